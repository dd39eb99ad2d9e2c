#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// RFC 3339 UTC timestamps, the form of an envelope's `timestamp`.
///
/// Hand-written: the broker stamps every accepted event, and a formatter that allocates a calendar per call
/// would sit on the publish path. Only UTC is accepted (`Z`, `z`, `+00:00` or `-00:00`), as PROTOCOL.md §1 asks.
public enum Timestamp: Sendable {
    /// The current time as `2026-11-23T08:00:00.123Z`: millisecond precision, UTC.
    public static func now() -> String {
        format(millisecondsSinceEpoch: currentMilliseconds())
    }

    /// Milliseconds since 1970-01-01T00:00:00Z, from the system's real-time clock.
    public static func currentMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }

    /// Formats milliseconds since the epoch as an RFC 3339 UTC timestamp with millisecond precision. A time
    /// RFC 3339's four-digit years cannot write (before year 0, after 9999: a `from` given with an offset can
    /// fall there) is written as the nearest one they can, 0000-01-01T00:00:00.000Z or
    /// 9999-12-31T23:59:59.999Z.
    public static func format(millisecondsSinceEpoch: Int64) -> String {
        let clamped = min(max(millisecondsSinceEpoch, -62_167_219_200_000), 253_402_300_799_999)
        let (days, millisecondOfDay) = clamped.quotientAndRemainder(dividingBy: 86_400_000)
        let adjustedDays = millisecondOfDay < 0 ? days - 1 : days
        let milliseconds = millisecondOfDay < 0 ? millisecondOfDay + 86_400_000 : millisecondOfDay
        let (year, month, day) = civilDate(daysSinceEpoch: adjustedDays)
        let seconds = milliseconds / 1000
        var text = [UInt8](repeating: UInt8(ascii: "0"), count: 24)
        func put(_ value: Int64, at offset: Int, width: Int) {
            var value = value
            for index in stride(from: offset + width - 1, through: offset, by: -1) {
                text[index] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            }
        }
        put(year, at: 0, width: 4)
        text[4] = UInt8(ascii: "-")
        put(month, at: 5, width: 2)
        text[7] = UInt8(ascii: "-")
        put(day, at: 8, width: 2)
        text[10] = UInt8(ascii: "T")
        put(seconds / 3600, at: 11, width: 2)
        text[13] = UInt8(ascii: ":")
        put(seconds / 60 % 60, at: 14, width: 2)
        text[16] = UInt8(ascii: ":")
        put(seconds % 60, at: 17, width: 2)
        text[19] = UInt8(ascii: ".")
        put(milliseconds % 1000, at: 20, width: 3)
        text[23] = UInt8(ascii: "Z")
        return String(decoding: text, as: UTF8.self)
    }

    /// Parses an RFC 3339 UTC timestamp into milliseconds since the epoch (fractions below a millisecond
    /// are truncated), or returns `nil` if `text` is not one. With `anyOffset`, any RFC 3339 offset from UTC
    /// (`+02:00`, `-05:30`) is accepted too and taken into account: for times a client asks about (`from`),
    /// which only envelopes' own timestamps restrict to UTC (PROTOCOL.md §1).
    public static func millisecondsSinceEpoch(_ text: String, anyOffset: Bool = false) -> Int64? {
        var text = text
        return text.withUTF8 { parse($0, anyOffset: anyOffset) }
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>, anyOffset: Bool) -> Int64? {
        guard bytes.count >= 20 else { return nil }
        func number(_ offset: Int, _ width: Int) -> Int64? {
            var value: Int64 = 0
            for index in offset..<offset + width {
                let byte = bytes[index]
                guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0, 4), bytes[4] == UInt8(ascii: "-"),
            let month = number(5, 2), bytes[7] == UInt8(ascii: "-"),
            let day = number(8, 2), bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t"),
            let hour = number(11, 2), bytes[13] == UInt8(ascii: ":"),
            let minute = number(14, 2), bytes[16] == UInt8(ascii: ":"),
            let second = number(17, 2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month), hour <= 23,
            minute <= 59, second <= 60
        else { return nil }
        var index = 19
        var millisecond: Int64 = 0
        if bytes[index] == UInt8(ascii: ".") {
            index += 1
            let fractionStart = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                if index - fractionStart < 3 {
                    millisecond = millisecond * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
                }
                index += 1
            }
            let fractionDigits = index - fractionStart
            guard fractionDigits > 0 else { return nil }
            var padding = fractionDigits
            while padding < 3 {
                millisecond *= 10
                padding += 1
            }
        }
        let rest = UnsafeBufferPointer(rebasing: bytes[index...])
        // The offset from UTC, in minutes: `Z`, or `±hh:mm` (only `±00:00` unless `anyOffset`).
        var offsetMinutes: Int64 = 0
        if rest.count == 1 && (rest[0] == UInt8(ascii: "Z") || rest[0] == UInt8(ascii: "z")) {
            offsetMinutes = 0
        } else if rest.count == 6, rest[0] == UInt8(ascii: "+") || rest[0] == UInt8(ascii: "-"),
            rest[3] == UInt8(ascii: ":"), let hours = number(index + 1, 2), let minutes = number(index + 4, 2),
            hours <= 23, minutes <= 59
        {
            offsetMinutes = (hours * 60 + minutes) * (rest[0] == UInt8(ascii: "-") ? -1 : 1)
            guard offsetMinutes == 0 || anyOffset else { return nil }
        } else {
            return nil
        }
        // A leap second (:60) is accepted and counted as the next second, as POSIX time does.
        let days = daysSinceEpoch(year: year, month: month, day: day)
        return ((days * 24 + hour) * 60 + minute - offsetMinutes) * 60_000 + second * 1000 + millisecond
    }

    private static func isLeapYear(_ year: Int64) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    private static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Howard Hinnant's days_from_civil and civil_from_days, proleptic Gregorian calendar.
    private static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func civilDate(daysSinceEpoch: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthPrime = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthPrime + 2) / 5 + 1
        let month = monthPrime < 10 ? monthPrime + 3 : monthPrime - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
