// A thin blocking AMQP client over rabbitmq-c, resolved with dlopen so that librabbitmq is needed only by a
// broker that has a RabbitMQ bridge configured (docs/scale-out.md). The headers come from librabbitmq-dev
// at build time; only the functions below are taken from the library at run time.

#include "herald_amqp.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static const amqp_channel_t channel = 1;

// MARK: Loading

static struct {
    amqp_connection_state_t (*new_connection)(void);
    int (*destroy_connection)(amqp_connection_state_t);
    amqp_socket_t *(*tcp_socket_new)(amqp_connection_state_t);
    int (*socket_open_noblock)(amqp_socket_t *, const char *, int, const struct timeval *);
    amqp_rpc_reply_t (*login)(amqp_connection_state_t, const char *, int, int, int, const amqp_table_t *,
                              amqp_sasl_method_enum, ...);
    amqp_channel_open_ok_t *(*channel_open)(amqp_connection_state_t, amqp_channel_t);
    amqp_rpc_reply_t (*get_rpc_reply)(amqp_connection_state_t);
    amqp_rpc_reply_t (*channel_close)(amqp_connection_state_t, amqp_channel_t, int);
    amqp_rpc_reply_t (*connection_close)(amqp_connection_state_t, int);
    amqp_exchange_declare_ok_t *(*exchange_declare)(
        amqp_connection_state_t, amqp_channel_t, amqp_bytes_t, amqp_bytes_t, amqp_boolean_t, amqp_boolean_t,
        amqp_boolean_t, amqp_boolean_t, amqp_table_t);
    amqp_exchange_bind_ok_t *(*exchange_bind)(
        amqp_connection_state_t, amqp_channel_t, amqp_bytes_t, amqp_bytes_t, amqp_bytes_t, amqp_table_t);
    amqp_exchange_delete_ok_t *(*exchange_delete)(amqp_connection_state_t, amqp_channel_t, amqp_bytes_t,
                                                  amqp_boolean_t);
    amqp_queue_declare_ok_t *(*queue_declare)(
        amqp_connection_state_t, amqp_channel_t, amqp_bytes_t, amqp_boolean_t, amqp_boolean_t, amqp_boolean_t,
        amqp_boolean_t, amqp_table_t);
    amqp_queue_bind_ok_t *(*queue_bind)(
        amqp_connection_state_t, amqp_channel_t, amqp_bytes_t, amqp_bytes_t, amqp_bytes_t, amqp_table_t);
    amqp_queue_delete_ok_t *(*queue_delete)(amqp_connection_state_t, amqp_channel_t, amqp_bytes_t,
                                            amqp_boolean_t, amqp_boolean_t);
    amqp_confirm_select_ok_t *(*confirm_select)(amqp_connection_state_t, amqp_channel_t);
    amqp_basic_qos_ok_t *(*basic_qos)(amqp_connection_state_t, amqp_channel_t, uint32_t, uint16_t,
                                      amqp_boolean_t);
    amqp_basic_consume_ok_t *(*basic_consume)(
        amqp_connection_state_t, amqp_channel_t, amqp_bytes_t, amqp_bytes_t, amqp_boolean_t, amqp_boolean_t,
        amqp_boolean_t, amqp_table_t);
    int (*basic_publish)(
        amqp_connection_state_t, amqp_channel_t, amqp_bytes_t, amqp_bytes_t, amqp_boolean_t, amqp_boolean_t,
        const amqp_basic_properties_t *, amqp_bytes_t);
    int (*basic_ack)(amqp_connection_state_t, amqp_channel_t, uint64_t, amqp_boolean_t);
    int (*basic_reject)(amqp_connection_state_t, amqp_channel_t, uint64_t, amqp_boolean_t);
    int (*simple_wait_frame)(amqp_connection_state_t, amqp_frame_t *);
    int (*simple_wait_frame_noblock)(amqp_connection_state_t, amqp_frame_t *, const struct timeval *);
    amqp_rpc_reply_t (*read_message)(amqp_connection_state_t, amqp_channel_t, amqp_message_t *, int);
    void (*destroy_message)(amqp_message_t *);
    amqp_rpc_reply_t (*consume_message)(amqp_connection_state_t, amqp_envelope_t *, const struct timeval *, int);
    void (*destroy_envelope)(amqp_envelope_t *);
    void (*maybe_release_buffers)(amqp_connection_state_t);
    int (*parse_url)(char *, struct amqp_connection_info *);
    void (*default_connection_info)(struct amqp_connection_info *);
    int (*set_rpc_timeout)(amqp_connection_state_t, const struct timeval *);
    int (*get_sockfd)(amqp_connection_state_t);
    int (*set_handshake_timeout)(amqp_connection_state_t, const struct timeval *);
    const char *(*error_string2)(int);
} lib;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
/// Set once by `load`: whether every function was found, and if not, why.
static int loaded = 0;
static char load_error[256] = "librabbitmq.so.4 was not loaded";

#define RESOLVE(handle, field, symbol)                                                                       \
    do {                                                                                                     \
        *(void **)(&lib.field) = dlsym(handle, symbol);                                                      \
        if (lib.field == NULL) {                                                                             \
            snprintf(load_error, sizeof load_error, "librabbitmq.so.4 has no %s", symbol);                   \
            return;                                                                                          \
        }                                                                                                    \
    } while (0)

static void load(void) {
    void *handle = dlopen("librabbitmq.so.4", RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        snprintf(load_error, sizeof load_error,
                 "the RabbitMQ bridge needs librabbitmq.so.4 (Debian package librabbitmq4): %s", dlerror());
        return;
    }
    RESOLVE(handle, new_connection, "amqp_new_connection");
    RESOLVE(handle, destroy_connection, "amqp_destroy_connection");
    RESOLVE(handle, tcp_socket_new, "amqp_tcp_socket_new");
    RESOLVE(handle, socket_open_noblock, "amqp_socket_open_noblock");
    RESOLVE(handle, login, "amqp_login_with_properties");
    RESOLVE(handle, channel_open, "amqp_channel_open");
    RESOLVE(handle, get_rpc_reply, "amqp_get_rpc_reply");
    RESOLVE(handle, channel_close, "amqp_channel_close");
    RESOLVE(handle, connection_close, "amqp_connection_close");
    RESOLVE(handle, exchange_declare, "amqp_exchange_declare");
    RESOLVE(handle, exchange_bind, "amqp_exchange_bind");
    RESOLVE(handle, exchange_delete, "amqp_exchange_delete");
    RESOLVE(handle, queue_declare, "amqp_queue_declare");
    RESOLVE(handle, queue_bind, "amqp_queue_bind");
    RESOLVE(handle, queue_delete, "amqp_queue_delete");
    RESOLVE(handle, confirm_select, "amqp_confirm_select");
    RESOLVE(handle, basic_qos, "amqp_basic_qos");
    RESOLVE(handle, basic_consume, "amqp_basic_consume");
    RESOLVE(handle, basic_publish, "amqp_basic_publish");
    RESOLVE(handle, basic_ack, "amqp_basic_ack");
    RESOLVE(handle, basic_reject, "amqp_basic_reject");
    RESOLVE(handle, simple_wait_frame, "amqp_simple_wait_frame");
    RESOLVE(handle, simple_wait_frame_noblock, "amqp_simple_wait_frame_noblock");
    RESOLVE(handle, read_message, "amqp_read_message");
    RESOLVE(handle, destroy_message, "amqp_destroy_message");
    RESOLVE(handle, consume_message, "amqp_consume_message");
    RESOLVE(handle, destroy_envelope, "amqp_destroy_envelope");
    RESOLVE(handle, maybe_release_buffers, "amqp_maybe_release_buffers");
    RESOLVE(handle, parse_url, "amqp_parse_url");
    RESOLVE(handle, default_connection_info, "amqp_default_connection_info");
    RESOLVE(handle, set_rpc_timeout, "amqp_set_rpc_timeout");
    RESOLVE(handle, get_sockfd, "amqp_get_sockfd");
    RESOLVE(handle, set_handshake_timeout, "amqp_set_handshake_timeout");
    RESOLVE(handle, error_string2, "amqp_error_string2");
    loaded = 1;
}

int herald_amqp_load(char *error, size_t error_size) {
    pthread_once(&load_once, load);
    if (!loaded) {
        snprintf(error, error_size, "%s", load_error);
        return -1;
    }
    return 0;
}

// MARK: Connections

struct herald_amqp {
    /// NULL before `herald_amqp_open` and after `herald_amqp_close`.
    amqp_connection_state_t state;
    /// Guards `socket` and `interrupted`, the only fields another thread touches (`herald_amqp_interrupt`).
    pthread_mutex_t lock;
    /// A duplicate of the connection's socket once it is connected, -1 before and after: what an interrupt
    /// shuts down. A descriptor of its own, since rabbitmq-c closes its own on some failures (a login
    /// refused, an RPC or heartbeat timed out), after which the number may be another file's.
    int socket;
    int interrupted;
    /// The channel and connection are still open, as far as this side knows.
    int channel_open;
    int connection_open;
    char error[512];
};

static amqp_bytes_t bytes(const char *text) {
    amqp_bytes_t result = {text == NULL ? 0 : strlen(text), (void *)text};
    return result;
}

static void copy_bytes(char *into, size_t size, amqp_bytes_t from) {
    size_t length = from.len < size - 1 ? from.len : size - 1;
    if (length > 0) memcpy(into, from.bytes, length);
    into[length] = '\0';
}

static struct timeval interval(int milliseconds) {
    struct timeval value = {milliseconds / 1000, (milliseconds % 1000) * 1000};
    return value;
}

static int fail(herald_amqp *connection, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(connection->error, sizeof connection->error, format, arguments);
    va_end(arguments);
    return -1;
}

/// Records what a close method from the server said; the channel or connection is gone after it.
static int fail_closed(herald_amqp *connection, const char *what, amqp_method_t method) {
    if (method.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_t *close = method.decoded;
        connection->connection_open = 0;
        connection->channel_open = 0;
        return fail(connection, "%s: the server closed the connection: %u %.*s", what, close->reply_code,
                    (int)close->reply_text.len, (const char *)close->reply_text.bytes);
    }
    if (method.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *close = method.decoded;
        connection->channel_open = 0;
        return fail(connection, "%s: the server closed the channel: %u %.*s", what, close->reply_code,
                    (int)close->reply_text.len, (const char *)close->reply_text.bytes);
    }
    return fail(connection, "%s: unexpected method 0x%08x from the server", what, method.id);
}

/// Checks the reply of the last RPC.
static int check(herald_amqp *connection, amqp_rpc_reply_t reply, const char *what) {
    switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return 0;
    case AMQP_RESPONSE_NONE:
        connection->connection_open = 0;
        return fail(connection, "%s: no reply from the server", what);
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        connection->connection_open = 0;
        return fail(connection, "%s: %s", what, lib.error_string2(reply.library_error));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        return fail_closed(connection, what, reply.reply);
    }
    return fail(connection, "%s: unknown reply", what);
}

static int check_last(herald_amqp *connection, const char *what) {
    return check(connection, lib.get_rpc_reply(connection->state), what);
}

static int check_status(herald_amqp *connection, int status, const char *what) {
    if (status == AMQP_STATUS_OK) return 0;
    connection->connection_open = 0;
    return fail(connection, "%s: %s", what, lib.error_string2(status));
}

herald_amqp *herald_amqp_new(void) {
    herald_amqp *connection = calloc(1, sizeof *connection);
    if (connection == NULL) return NULL;
    pthread_mutex_init(&connection->lock, NULL);
    connection->socket = -1;
    return connection;
}

/// 1 when the connection was interrupted, -1 when `socket` could not be duplicated (no descriptor left: a
/// connection nothing could interrupt must not be used), else 0 and, with `socket` >= 0, a duplicate of it
/// is the one an interrupt shuts down. With -1 the connection has none any more (the duplicate is closed).
static int set_socket(herald_amqp *connection, int socket) {
    pthread_mutex_lock(&connection->lock);
    int result = connection->interrupted;
    if (connection->socket >= 0) close(connection->socket);
    connection->socket = -1;
    if (!result && socket >= 0) {
        connection->socket = fcntl(socket, F_DUPFD_CLOEXEC, 0);
        if (connection->socket < 0) result = -1;
    }
    pthread_mutex_unlock(&connection->lock);
    return result;
}

int herald_amqp_open(herald_amqp *connection, const char *url, int heartbeat_seconds, int timeout_ms) {
    if (herald_amqp_load(connection->error, sizeof connection->error) != 0) return -1;
    if (connection->state != NULL) return fail(connection, "the connection was opened already");
    if (set_socket(connection, -1) != 0) return fail(connection, "connecting: interrupted");
    char *text = strdup(url);
    if (text == NULL) return fail(connection, "out of memory");
    struct amqp_connection_info info;
    lib.default_connection_info(&info);
    if (lib.parse_url(text, &info) != AMQP_STATUS_OK || info.ssl) {
        free(text);
        /* The URL is not quoted: it may hold a password. */
        return fail(connection, "the URL is not one librabbitmq reads (amqp://user:password@host:port/vhost)");
    }
    connection->state = lib.new_connection();
    amqp_socket_t *socket = lib.tcp_socket_new(connection->state);
    struct timeval timeout = interval(timeout_ms);
    int status = socket == NULL ? AMQP_STATUS_NO_MEMORY
                                : lib.socket_open_noblock(socket, info.host, info.port, &timeout);
    if (status != AMQP_STATUS_OK) {
        fail(connection, "connecting to %s:%d: %s", info.host, info.port, lib.error_string2(status));
        free(text);
        herald_amqp_close(connection);
        return -1;
    }
    connection->connection_open = 1;
    // From here an interrupt shuts the socket down, which ends any call blocked on it at once.
    int registered = set_socket(connection, lib.get_sockfd(connection->state));
    if (registered != 0) {
        free(text);
        connection->connection_open = 0;
        herald_amqp_close(connection);
        return registered > 0 ? fail(connection, "connecting: interrupted")
                              : fail(connection, "connecting: no file descriptor left to watch the socket with");
    }
    lib.set_rpc_timeout(connection->state, &timeout);
    lib.set_handshake_timeout(connection->state, &timeout);
    // `consumer_cancel_notify`: RabbitMQ tells a consumer whose queue is deleted (`basic.cancel`) instead of
    // leaving it waiting for good (librabbitmq merges it with its own capabilities).
    amqp_table_entry_t capability = {.key = bytes("consumer_cancel_notify"),
                                     .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value = {.boolean = 1}}};
    amqp_table_entry_t property = {
        .key = bytes("capabilities"),
        .value = {.kind = AMQP_FIELD_KIND_TABLE, .value = {.table = {.num_entries = 1, .entries = &capability}}}};
    amqp_table_t properties = {.num_entries = 1, .entries = &property};
    amqp_rpc_reply_t login =
        lib.login(connection->state, info.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, heartbeat_seconds, &properties,
                  AMQP_SASL_METHOD_PLAIN, info.user, info.password);
    free(text);
    if (check(connection, login, "logging in") != 0) {
        herald_amqp_close(connection);
        return -1;
    }
    lib.channel_open(connection->state, channel);
    if (check_last(connection, "opening a channel") != 0) {
        herald_amqp_close(connection);
        return -1;
    }
    connection->channel_open = 1;
    return 0;
}

void herald_amqp_interrupt(herald_amqp *connection) {
    pthread_mutex_lock(&connection->lock);
    connection->interrupted = 1;
    if (connection->socket >= 0) shutdown(connection->socket, SHUT_RDWR);
    pthread_mutex_unlock(&connection->lock);
}

void herald_amqp_close(herald_amqp *connection) {
    if (connection->state == NULL) return;
    pthread_mutex_lock(&connection->lock);
    int interrupted = connection->interrupted;
    pthread_mutex_unlock(&connection->lock);
    // An interrupted connection's socket is shut down: a polite close would only wait for its timeout.
    if (connection->connection_open && !interrupted) {
        if (connection->channel_open) lib.channel_close(connection->state, channel, AMQP_REPLY_SUCCESS);
        lib.connection_close(connection->state, AMQP_REPLY_SUCCESS);
    }
    connection->connection_open = 0;
    connection->channel_open = 0;
    // No interrupt may shut down the descriptor once it is closed: the number may be given to another file.
    set_socket(connection, -1);
    lib.destroy_connection(connection->state);
    connection->state = NULL;
}

void herald_amqp_free(herald_amqp *connection) {
    if (connection == NULL) return;
    herald_amqp_close(connection);
    pthread_mutex_destroy(&connection->lock);
    free(connection);
}

const char *herald_amqp_error(const herald_amqp *connection) { return connection->error; }

// MARK: Topology

/// Fills `entries` (at most 16) from `arguments`.
static int make_table(herald_amqp *connection, const herald_amqp_argument *arguments, size_t count,
                      amqp_table_entry_t *entries, amqp_table_t *table) {
    if (count > 16) return fail(connection, "at most 16 arguments");
    for (size_t index = 0; index < count; index++) {
        entries[index].key = bytes(arguments[index].name);
        if (arguments[index].string != NULL) {
            entries[index].value.kind = AMQP_FIELD_KIND_UTF8;
            entries[index].value.value.bytes = bytes(arguments[index].string);
        } else if (arguments[index].is_boolean) {
            entries[index].value.kind = AMQP_FIELD_KIND_BOOLEAN;
            entries[index].value.value.boolean = arguments[index].integer != 0;
        } else {
            entries[index].value.kind = AMQP_FIELD_KIND_I64;
            entries[index].value.value.i64 = arguments[index].integer;
        }
    }
    table->num_entries = (int)count;
    table->entries = count == 0 ? NULL : entries;
    return 0;
}

int herald_amqp_declare_exchange(
    herald_amqp *connection, const char *name, const char *type, const herald_amqp_argument *arguments,
    size_t argument_count) {
    amqp_table_entry_t entries[16];
    amqp_table_t table;
    if (make_table(connection, arguments, argument_count, entries, &table) != 0) return -1;
    lib.exchange_declare(connection->state, channel, bytes(name), bytes(type), 0, 1, 0, 0, table);
    return check_last(connection, "declaring an exchange");
}

int herald_amqp_declare_queue(
    herald_amqp *connection, const char *name, int passive, const herald_amqp_argument *arguments,
    size_t argument_count, uint32_t *message_count) {
    amqp_table_entry_t entries[16];
    amqp_table_t table;
    if (make_table(connection, arguments, argument_count, entries, &table) != 0) return -1;
    amqp_queue_declare_ok_t *ok =
        lib.queue_declare(connection->state, channel, bytes(name), passive != 0, 1, 0, 0, table);
    if (check_last(connection, "declaring a queue") != 0) return -1;
    if (message_count != NULL) *message_count = ok->message_count;
    return 0;
}

int herald_amqp_bind_queue(herald_amqp *connection, const char *queue, const char *exchange, const char *key) {
    amqp_table_t none = {0, NULL};
    lib.queue_bind(connection->state, channel, bytes(queue), bytes(exchange), bytes(key), none);
    return check_last(connection, "binding a queue");
}

int herald_amqp_bind_exchange(
    herald_amqp *connection, const char *destination, const char *source, const char *key) {
    amqp_table_t none = {0, NULL};
    lib.exchange_bind(connection->state, channel, bytes(destination), bytes(source), bytes(key), none);
    return check_last(connection, "binding an exchange");
}

int herald_amqp_delete_queue(herald_amqp *connection, const char *queue) {
    lib.queue_delete(connection->state, channel, bytes(queue), 0, 0);
    return check_last(connection, "deleting a queue");
}

int herald_amqp_delete_exchange(herald_amqp *connection, const char *exchange) {
    lib.exchange_delete(connection->state, channel, bytes(exchange), 0);
    return check_last(connection, "deleting an exchange");
}

// MARK: Publishing

int herald_amqp_confirm_select(herald_amqp *connection) {
    lib.confirm_select(connection->state, channel);
    return check_last(connection, "selecting publisher confirms");
}

int herald_amqp_publish(
    herald_amqp *connection, const char *exchange, const char *routing_key, const void *body, size_t length,
    const herald_amqp_properties *properties) {
    amqp_basic_properties_t basic;
    memset(&basic, 0, sizeof basic);
    basic._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    basic.content_type = bytes("application/json");
    basic.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    if (properties->message_id != NULL) {
        basic._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        basic.message_id = bytes(properties->message_id);
    }
    if (properties->type != NULL) {
        basic._flags |= AMQP_BASIC_TYPE_FLAG;
        basic.type = bytes(properties->type);
    }
    if (properties->app_id != NULL) {
        basic._flags |= AMQP_BASIC_APP_ID_FLAG;
        basic.app_id = bytes(properties->app_id);
    }
    if (properties->timestamp_ms > 0) {
        basic._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
        basic.timestamp = (uint64_t)(properties->timestamp_ms / 1000);
    }
    amqp_table_entry_t entries[8];
    if (properties->header_count > 8) return fail(connection, "at most 8 headers");
    if (properties->header_count > 0) {
        for (size_t index = 0; index < properties->header_count; index++) {
            entries[index].key = bytes(properties->header_names[index]);
            entries[index].value.kind = AMQP_FIELD_KIND_UTF8;
            entries[index].value.value.bytes = bytes(properties->header_values[index]);
        }
        basic._flags |= AMQP_BASIC_HEADERS_FLAG;
        basic.headers.num_entries = (int)properties->header_count;
        basic.headers.entries = entries;
    }
    amqp_bytes_t content = {length, (void *)body};
    int status = lib.basic_publish(connection->state, channel, bytes(exchange), bytes(routing_key), 0, 0, &basic,
                                   content);
    return check_status(connection, status, "publishing");
}

int herald_amqp_wait_confirm(herald_amqp *connection, int timeout_ms, herald_amqp_confirm *confirm) {
    lib.maybe_release_buffers(connection->state);
    struct timeval timeout = interval(timeout_ms);
    while (1) {
        amqp_frame_t frame;
        int status = lib.simple_wait_frame_noblock(connection->state, &frame, &timeout);
        if (status == AMQP_STATUS_TIMEOUT) return 0;
        if (check_status(connection, status, "waiting for confirms") != 0) return -1;
        if (frame.frame_type != AMQP_FRAME_METHOD) continue;
        switch (frame.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *ack = frame.payload.method.decoded;
            confirm->tag = ack->delivery_tag;
            confirm->multiple = ack->multiple;
            confirm->ack = 1;
            return 1;
        }
        case AMQP_BASIC_NACK_METHOD: {
            amqp_basic_nack_t *nack = frame.payload.method.decoded;
            confirm->tag = nack->delivery_tag;
            confirm->multiple = nack->multiple;
            confirm->ack = 0;
            return 1;
        }
        case AMQP_BASIC_RETURN_METHOD: {
            // Only mandatory publishes come back; read the returned message and go on.
            amqp_message_t message;
            amqp_rpc_reply_t reply = lib.read_message(connection->state, frame.channel, &message, 0);
            if (check(connection, reply, "reading a returned message") != 0) return -1;
            lib.destroy_message(&message);
            continue;
        }
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
            return fail_closed(connection, "waiting for confirms", frame.payload.method);
        default:
            continue;
        }
    }
}

// MARK: Consuming

int herald_amqp_qos(herald_amqp *connection, uint16_t prefetch) {
    lib.basic_qos(connection->state, channel, 0, prefetch, 0);
    return check_last(connection, "setting the prefetch count");
}

int herald_amqp_consume(herald_amqp *connection, const char *queue) {
    amqp_table_t none = {0, NULL};
    lib.basic_consume(connection->state, channel, bytes(queue), bytes(queue), 0, 0, 0, none);
    return check_last(connection, "consuming a queue");
}

static void copy_header(char *into, size_t size, amqp_table_t headers, const char *name) {
    into[0] = '\0';
    for (int index = 0; index < headers.num_entries; index++) {
        amqp_table_entry_t *entry = &headers.entries[index];
        if (entry->key.len != strlen(name) || memcmp(entry->key.bytes, name, entry->key.len) != 0) continue;
        if (entry->value.kind == AMQP_FIELD_KIND_UTF8 || entry->value.kind == AMQP_FIELD_KIND_BYTES) {
            copy_bytes(into, size, entry->value.value.bytes);
        }
        return;
    }
}

int herald_amqp_next_message(herald_amqp *connection, int timeout_ms, herald_amqp_message *message) {
    lib.maybe_release_buffers(connection->state);
    struct timeval timeout = interval(timeout_ms);
    amqp_envelope_t envelope;
    amqp_rpc_reply_t reply = lib.consume_message(connection->state, &envelope, &timeout, 0);
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && reply.library_error == AMQP_STATUS_TIMEOUT) {
        return 0;
    }
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && reply.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
        // A frame other than a delivery: a close ends the connection, and so does the server's cancel of a
        // consumer (its queue was deleted, or the node holding it went down), which would otherwise leave
        // the queue unread for good; anything else is passed over.
        amqp_frame_t frame;
        int status = lib.simple_wait_frame(connection->state, &frame);
        if (check_status(connection, status, "consuming") != 0) return -1;
        if (frame.frame_type == AMQP_FRAME_METHOD && (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                                                      frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
            return fail_closed(connection, "consuming", frame.payload.method);
        }
        if (frame.frame_type == AMQP_FRAME_METHOD && frame.payload.method.id == AMQP_BASIC_CANCEL_METHOD) {
            amqp_basic_cancel_t *cancel = frame.payload.method.decoded;
            return fail(connection,
                        "consuming: RabbitMQ cancelled the consumer of queue '%.*s' (the queue was deleted, or "
                        "its node went down)",
                        (int)cancel->consumer_tag.len, (const char *)cancel->consumer_tag.bytes);
        }
        return 0;
    }
    if (check(connection, reply, "consuming") != 0) return -1;
    memset(message, 0, sizeof *message);
    message->delivery_tag = envelope.delivery_tag;
    message->redelivered = envelope.redelivered;
    message->length = envelope.message.body.len;
    message->body = malloc(message->length == 0 ? 1 : message->length);
    if (message->body == NULL) {
        lib.destroy_envelope(&envelope);
        return fail(connection, "out of memory");
    }
    if (message->length > 0) memcpy(message->body, envelope.message.body.bytes, message->length);
    amqp_basic_properties_t *properties = &envelope.message.properties;
    message->delivery_mode = (properties->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) ? properties->delivery_mode : 0;
    copy_bytes(message->routing_key, sizeof message->routing_key, envelope.routing_key);
    copy_bytes(message->consumer_tag, sizeof message->consumer_tag, envelope.consumer_tag);
    if (properties->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
        copy_bytes(message->message_id, sizeof message->message_id, properties->message_id);
    }
    if (properties->_flags & AMQP_BASIC_APP_ID_FLAG) {
        copy_bytes(message->app_id, sizeof message->app_id, properties->app_id);
    }
    if (properties->_flags & AMQP_BASIC_HEADERS_FLAG) {
        copy_header(message->chain_id_header, sizeof message->chain_id_header, properties->headers, "chain_id");
    }
    lib.destroy_envelope(&envelope);
    return 1;
}

void herald_amqp_message_free(herald_amqp_message *message) {
    free(message->body);
    message->body = NULL;
}

int herald_amqp_ack(herald_amqp *connection, uint64_t delivery_tag, int multiple) {
    return check_status(connection, lib.basic_ack(connection->state, channel, delivery_tag, multiple != 0),
                        "acknowledging");
}

int herald_amqp_reject(herald_amqp *connection, uint64_t delivery_tag, int requeue) {
    return check_status(connection, lib.basic_reject(connection->state, channel, delivery_tag, requeue != 0),
                        "rejecting");
}
