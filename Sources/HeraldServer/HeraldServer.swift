// HeraldServer — the broker, the IPC listener, the module supervisor, the HTTP/WebSocket gateway, metrics,
// auth and configuration, each a `Service`.
//
// NOT BUILT YET: the broker and IPC listener arrive with issue #3, the gateway with #5, the supervisor with
// #6. The target exists so that the package layout is final; it holds no code.
