import Foundation

extension Process {
    /// Waits for the child to exit, checking every 2 ms. `waitUntilExit()` on Linux spins its run loop for
    /// as long as the child runs — a whole core, taken from the broker a benchmark is stopping.
    func waitForExit() {
        while isRunning { usleep(2_000) }
    }
}
