import CHeraldCRC32C

/// CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and Kafka's record batches), which every log record
/// carries. With the CPU's CRC-32C instruction when it has one (SSE 4.2, the AArch64 CRC extension: eight
/// bytes per instruction, `CHeraldCRC32C`); otherwise hand-written, because no package this project may use
/// provides it: slicing by eight, one table lookup per byte in eight independent lanes, about 1–2 GB/s.
package enum CRC32C {
    /// Whether the CPU's instruction is used, decided once.
    package static let usesHardware = herald_crc32c_hardware() == 1

    /// The checksum of `bytes`.
    package static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        update(0, with: bytes)
    }

    /// Continues `crc` (a finished checksum of earlier bytes) with `bytes`.
    package static func update(_ crc: UInt32, with bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard usesHardware else { return updateInSoftware(crc, with: bytes) }
        guard let base = bytes.baseAddress else { return crc }
        return ~herald_crc32c_update_hardware(~crc, base, bytes.count)
    }

    /// ``update(_:with:)`` by table, on any CPU.
    package static func updateInSoftware(_ crc: UInt32, with bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = ~crc
        var index = 0
        let count = bytes.count
        tables.withUnsafeBufferPointer { table in
            while count - index >= 8 {
                let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self).littleEndian ^ UInt64(crc)
                crc =
                    table[7 * 256 + Int(word & 0xFF)] ^ table[6 * 256 + Int(word >> 8 & 0xFF)]
                    ^ table[5 * 256 + Int(word >> 16 & 0xFF)] ^ table[4 * 256 + Int(word >> 24 & 0xFF)]
                    ^ table[3 * 256 + Int(word >> 32 & 0xFF)] ^ table[2 * 256 + Int(word >> 40 & 0xFF)]
                    ^ table[1 * 256 + Int(word >> 48 & 0xFF)] ^ table[Int(word >> 56)]
                index += 8
            }
            while index < count {
                crc = table[Int((crc ^ UInt32(bytes[index])) & 0xFF)] ^ (crc >> 8)
                index += 1
            }
        }
        return ~crc
    }

    /// Eight tables of 256 entries: table k gives the CRC of a byte followed by k zero bytes.
    private static let tables: [UInt32] = {
        let polynomial: UInt32 = 0x82F6_3B78  // reflected Castagnoli
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ polynomial : crc >> 1 }
            tables[byte] = crc
        }
        for byte in 0..<256 {
            var crc = tables[byte]
            for slice in 1..<8 {
                crc = tables[Int(crc & 0xFF)] ^ (crc >> 8)
                tables[slice * 256 + byte] = crc
            }
        }
        return tables
    }()
}

/// FNV-1a, 64 bits: the stable hash that assigns an event to a partition by its key (PROTOCOL.md §4.2).
package enum FNV1a64 {
    package static func hash<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt64 {
        // A native string's UTF-8 (every key and event id) is contiguous: hashed over a buffer, without an
        // iterator per byte.
        bytes.withContiguousStorageIfAvailable { fold($0) } ?? fold(bytes)
    }

    @inline(__always)
    private static func fold<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }
}
