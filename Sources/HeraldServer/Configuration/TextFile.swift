import Foundation

/// Reading a configuration file or a module's manifest, with an error a person can act on: Foundation's
/// own messages for a directory or a file that is not UTF-8 are "The operation could not be completed.
/// (NSCocoaErrorDomain error 256.)".
package enum TextFile {
    /// The file's text, or why it cannot be read ("is a directory", "does not exist", …).
    package static func read(_ path: String) throws(TextFileError) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TextFileError("does not exist")
        }
        guard !isDirectory.boolValue else { throw TextFileError("is a directory, not a file") }
        // A FIFO would block the read until a writer came, a device read for ever (`/dev/zero`): only a
        // regular file (or a link to one) is read.
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            throw TextFileError("is not a regular file")
        }
        guard FileManager.default.isReadableFile(atPath: path) else { throw TextFileError("permission denied") }
        guard let data = FileManager.default.contents(atPath: path) else { throw TextFileError("could not be read") }
        guard let text = String(validating: data, as: UTF8.self) else { throw TextFileError("is not UTF-8 text") }
        return text
    }
}

/// Why ``TextFile/read(_:)`` could not read a file.
package struct TextFileError: Error, CustomStringConvertible {
    package let description: String

    init(_ description: String) {
        self.description = description
    }
}
