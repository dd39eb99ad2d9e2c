// HeraldLog — the durable log: partitions, segment files, recovery, retention, the dedup window,
// consumer-group offsets and in-flight/retry/dead-letter state.
//
// NOT BUILT YET: it arrives with issue #4 (the durable log). The target exists so that the package layout
// is final; it holds no code.
