/// What a catalog event's payload must look like: the fields `validate_payloads` checks.
struct PayloadSchema: Sendable {
    /// The JSON shape a field's value must have.
    indirect enum Shape: Sendable {
        case string
        /// A JSON integer (no fraction, no exponent) that fits 64 bits.
        case integer
        /// Any JSON number.
        case number
        case boolean
        /// 64 lowercase hexadecimal characters.
        case hash
        /// A string holding a non-negative decimal number of any size: digits, and optionally a `.` and more
        /// digits (`token.transfer`'s `amount`, EVENTS.md).
        case decimal
        /// One of a closed set of strings.
        case oneOf([String])
        case array(Shape)
        case object
        case any
    }

    struct Field: Sendable {
        let name: String
        let shape: Shape
        let isRequired: Bool

        static func required(_ name: String, _ shape: Shape) -> Field {
            Field(name: name, shape: shape, isRequired: true)
        }

        static func optional(_ name: String, _ shape: Shape) -> Field {
            Field(name: name, shape: shape, isRequired: false)
        }
    }

    /// The listed fields, in catalog order; `nil` for payloads that may be any object.
    let fields: [Field]?
    let fieldsByName: [String: Field]

    init(fields: [Field]) {
        self.fields = fields
        fieldsByName = Dictionary(uniqueKeysWithValues: fields.map { ($0.name, $0) })
    }

    private init() {
        fields = nil
        fieldsByName = [:]
    }

    /// Any JSON object (`validator.status`, `chain.data`).
    static let anyObject = PayloadSchema()
}
