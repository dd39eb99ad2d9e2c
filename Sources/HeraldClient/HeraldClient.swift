// HeraldClient — the Swift client a module uses: connect, hello, subscribe as an AsyncSequence, publish, ack.
//
// NOT BUILT YET: it arrives with issue #3 (the broker daemon). The target exists so that the package layout
// is final; it holds no code.
