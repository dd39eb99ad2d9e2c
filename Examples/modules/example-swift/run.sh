#!/bin/sh
# Runs the example built by `swift build` (make run builds it) from the repository's .build folder.
exec "$(dirname "$0")/../../../.build/debug/example-swift-module" "$@"
