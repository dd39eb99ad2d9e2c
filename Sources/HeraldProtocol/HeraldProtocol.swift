// HeraldProtocol — the wire frames of PROTOCOL.md, their encoding and decoding, shared by broker and client.
//
// NOT BUILT YET: it arrives with issue #3 (the broker daemon). The target exists so that the package layout
// is final; it holds no code. The JSON reader and writer it will use already live in HeraldCore/JSON.
