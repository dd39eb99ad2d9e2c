#ifndef HERALD_AMQP_H
#define HERALD_AMQP_H

#include <stddef.h>
#include <stdint.h>

/// A small blocking AMQP 0-9-1 client over rabbitmq-c (librabbitmq.so.4), which is loaded with dlopen on
/// first use rather than linked: a broker without `[bridge.rabbitmq]` runs where RabbitMQ's library is not
/// installed. Each connection has one channel (1) and is used by one thread at a time.
///
/// Every call that can fail returns 0 on success and -1 on failure with a one-line reason in
/// `herald_amqp_error`, after which the connection should be closed.

/// Loads librabbitmq.so.4 once. Returns 0, or -1 with the reason in `error`.
int herald_amqp_load(char *error, size_t error_size);

typedef struct herald_amqp herald_amqp;

/// A connection not opened yet (NULL when out of memory). Free it with `herald_amqp_free`.
herald_amqp *herald_amqp_new(void);

/// Connects to `url` (`amqp://user:password@host:port/vhost`, the defaults of rabbitmq-c for what is left
/// out), logs in and opens channel 1. Returns 0, or -1 with the reason in `herald_amqp_error` (the
/// connection is closed then). `timeout_ms` bounds the TCP connect (not the host name's lookup), the
/// login, and the wait for each RPC's reply; sending has no deadline (see `herald_amqp_interrupt`).
int herald_amqp_open(herald_amqp *connection, const char *url, int heartbeat_seconds, int timeout_ms);

/// The one call another thread may make, at any time until `herald_amqp_free`: shuts the connection's
/// socket down, so that a call blocked on it — a publish RabbitMQ does not read (a resource alarm), a login
/// a server never answers — fails at once, and every later call fails. An open still making its TCP
/// connection fails when that is made (or times out).
void herald_amqp_interrupt(herald_amqp *connection);

/// Closes the channel and the connection (politely when it is up and was not interrupted) and releases
/// rabbitmq-c's state; the connection takes no calls after it but `herald_amqp_interrupt` and
/// `herald_amqp_free`.
void herald_amqp_close(herald_amqp *connection);

/// Closes the connection if it is open and frees it.
void herald_amqp_free(herald_amqp *connection);

/// The reason for the last failure on this connection.
const char *herald_amqp_error(const herald_amqp *connection);

/// One queue or exchange argument: a string when `string` is not NULL, else a boolean (`integer` != 0)
/// when `is_boolean`, else the integer.
typedef struct {
    const char *name;
    const char *string;
    int64_t integer;
    int is_boolean;
} herald_amqp_argument;

int herald_amqp_declare_exchange(
    herald_amqp *connection, const char *name, const char *type, const herald_amqp_argument *arguments,
    size_t argument_count);
/// Declares a durable queue (`passive`: only checks that it exists); `*message_count`, when not NULL, is
/// set to the messages ready in it.
int herald_amqp_declare_queue(
    herald_amqp *connection, const char *name, int passive, const herald_amqp_argument *arguments,
    size_t argument_count, uint32_t *message_count);
int herald_amqp_bind_queue(herald_amqp *connection, const char *queue, const char *exchange, const char *key);
int herald_amqp_bind_exchange(
    herald_amqp *connection, const char *destination, const char *source, const char *key);
int herald_amqp_delete_queue(herald_amqp *connection, const char *queue);
int herald_amqp_delete_exchange(herald_amqp *connection, const char *exchange);

/// Puts the channel in publisher-confirm mode: delivery tags count publishes from 1.
int herald_amqp_confirm_select(herald_amqp *connection);

/// What a published message carries besides its body; NULL fields are left out.
typedef struct {
    const char *message_id;
    const char *type;
    const char *app_id;
    /// Milliseconds since 1970, 0 for none (AMQP carries seconds).
    int64_t timestamp_ms;
    /// String headers, `header_count` of each.
    const char *const *header_names;
    const char *const *header_values;
    size_t header_count;
} herald_amqp_properties;

/// Publishes a persistent `application/json` message.
int herald_amqp_publish(
    herald_amqp *connection, const char *exchange, const char *routing_key, const void *body, size_t length,
    const herald_amqp_properties *properties);

/// A publisher confirm: `ack` 1 (stored) or 0 (nack), for `tag` or, when `multiple`, every tag up to it.
typedef struct {
    uint64_t tag;
    int multiple;
    int ack;
} herald_amqp_confirm;

/// Waits up to `timeout_ms` for the next confirm. Returns 1 with `*confirm` set, 0 on timeout, -1 on
/// failure (a closed channel or connection among them). Heartbeats are kept while waiting.
int herald_amqp_wait_confirm(herald_amqp *connection, int timeout_ms, herald_amqp_confirm *confirm);

int herald_amqp_qos(herald_amqp *connection, uint16_t prefetch);
/// Starts consuming `queue` (manual acknowledgement).
int herald_amqp_consume(herald_amqp *connection, const char *queue);

/// A consumed message; `body` is owned by it until `herald_amqp_message_free`.
typedef struct {
    uint64_t delivery_tag;
    int redelivered;
    void *body;
    size_t length;
    uint8_t delivery_mode;
    char routing_key[256];
    char consumer_tag[256];
    char message_id[256];
    char app_id[256];
    char chain_id_header[64];
} herald_amqp_message;

/// Waits up to `timeout_ms` for the next message. Returns 1 with `*message` filled, 0 on timeout, -1 on
/// failure.
int herald_amqp_next_message(herald_amqp *connection, int timeout_ms, herald_amqp_message *message);
void herald_amqp_message_free(herald_amqp_message *message);

int herald_amqp_ack(herald_amqp *connection, uint64_t delivery_tag, int multiple);
/// Rejects one message; `requeue` 0 sends it to the queue's dead-letter exchange, or drops it.
int herald_amqp_reject(herald_amqp *connection, uint64_t delivery_tag, int requeue);

#endif
