import Foundation

/// The modules of a modules directory (`[modules] dir`): every `<dir>/<name>/module.toml` that passes its
/// checks, in start order, and an error for each that does not. A bad module is left out; the others
/// start (`docs/modules.md`).
public struct ModuleDirectory: Sendable {
    /// The directory, as configured.
    public let path: String
    /// The valid modules, dependencies before the modules that need them, otherwise by name.
    public private(set) var manifests: [ModuleManifest] = []
    /// Why each refused module was refused.
    public private(set) var errors: [ManifestError] = []
    /// Why a directory holds no modules at all.
    public enum Problem: String, Sendable {
        case missing = "does not exist"
        case notADirectory = "is not a directory"
    }
    /// Why the directory holds no modules at all, when it is missing or not a directory.
    public private(set) var problem: Problem?
    /// Folders in it without a `module.toml`: not modules.
    public private(set) var ignoredFolders: [String] = []

    /// Reads every manifest under `path`. A missing directory holds no modules; a folder without a
    /// `module.toml` is not a module.
    public init(path: String) {
        self.path = path
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            problem = .missing
        } else if !isDirectory.boolValue {
            problem = .notADirectory
        }
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        var candidates: [ModuleManifest] = []
        for folder in folders.sorted() where !folder.hasPrefix(".") {
            let full = path + "/" + folder
            guard FileManager.default.fileExists(atPath: full + "/" + ModuleManifest.fileName) else {
                var isFolder: ObjCBool = false
                if FileManager.default.fileExists(atPath: full, isDirectory: &isFolder), isFolder.boolValue {
                    ignoredFolders.append(folder)
                }
                continue
            }
            do {
                candidates.append(try ModuleManifest.load(folder: full))
            } catch {
                errors.append(error)
            }
        }
        let (ordered, refused) = Self.order(candidates, refusedNames: Set(errors.map(Self.moduleName)))
        manifests = ordered
        errors += refused
    }

    /// The module a refused manifest's file belongs to (its folder's name).
    private static func moduleName(_ error: ManifestError) -> String {
        URL(fileURLWithPath: error.file).deletingLastPathComponent().lastPathComponent
    }

    /// Orders `candidates` so that each comes after its dependencies, refusing a module whose dependency is
    /// unknown, refused, or part of a cycle with it.
    static func order(_ candidates: [ModuleManifest], refusedNames: Set<String>)
        -> (ordered: [ModuleManifest], refused: [ManifestError])
    {
        var refused: [ManifestError] = []
        var byName = Dictionary(candidates.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        // A refused dependency refuses its dependents, and theirs, until nothing changes.
        var changed = true
        while changed {
            changed = false
            for manifest in byName.values.sorted(by: { $0.name < $1.name }) {
                guard let missing = manifest.dependencies.first(where: { byName[$0] == nil }) else { continue }
                let why =
                    refusedNames.contains(missing) || refused.contains(where: { moduleName($0) == missing })
                    ? "'\(missing)' was refused, so this module cannot start"
                    : "'\(missing)' is not a module in \(URL(fileURLWithPath: manifest.folder).deletingLastPathComponent().path)"
                let index = manifest.dependencies.firstIndex(of: missing)!
                refused.append(
                    ManifestError(
                        file: manifest.folder + "/" + ModuleManifest.fileName, key: "depends_on[\(index)]", why))
                byName[manifest.name] = nil
                changed = true
            }
        }
        // Kahn's algorithm, taking the smallest name first among the modules that are ready.
        var remaining = byName
        var ordered: [ModuleManifest] = []
        while let next = remaining.values.filter({ manifest in
            manifest.dependencies.allSatisfy { remaining[$0] == nil }
        }).min(by: { $0.name < $1.name }) {
            ordered.append(next)
            remaining[next.name] = nil
        }
        for manifest in remaining.values.sorted(by: { $0.name < $1.name }) {
            refused.append(
                ManifestError(
                    file: manifest.folder + "/" + ModuleManifest.fileName, key: "depends_on",
                    "dependency cycle: \(cycle(from: manifest.name, in: remaining).joined(separator: " -> "))"))
        }
        return (ordered, refused)
    }

    /// A cycle through the unordered modules, starting at `name`'s path into it.
    private static func cycle(from name: String, in remaining: [String: ModuleManifest]) -> [String] {
        var path: [String] = []
        var current = name
        while !path.contains(current) {
            path.append(current)
            guard let next = remaining[current]?.dependencies.filter({ remaining[$0] != nil }).min() else { break }
            current = next
        }
        return path + [current]
    }
}
