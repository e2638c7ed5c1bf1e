import HTTPTypes

extension HTTPFields {
    /// The value of the first `name` field: for headers that take one value. The subscript
    /// joins repeated fields into a new string, which costs more than the rest of a small
    /// append's header handling.
    func firstValue(_ name: HTTPField.Name) -> String? {
        first { $0.name == name }?.value
    }
}
