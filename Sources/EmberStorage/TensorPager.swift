import Foundation

/// Tensors decoded from a container on demand, kept in an LRU cache under a byte budget, with
/// prefetch on a background thread — weight streaming for a model that lives in a container.
///
/// ```swift
/// let pager = TensorPager(container: container, budgetBytes: 64 << 20)
/// pager.prefetch(layer: 1)                       // decode layer 1 while layer 0 runs
/// try pager.withTensor(named: "blk.0.attn_q.weight") { bytes in … }
/// ```
///
/// The budget counts decoded bytes held by the cache. A tensor is pinned while a ``withTensor``
/// body runs and is never evicted then; the least recently used unpinned tensors are evicted to
/// make room. A tensor larger than the whole budget, or one that cannot fit beside the pinned
/// ones, is refused with ``StorageError/Code/budgetExceeded``. Prefetching evicts only unpinned
/// tensors and skips a tensor that cannot fit. A request for a tensor that is being prefetched
/// waits for that decode instead of decoding it twice. Decoding runs on the requesting thread or
/// the prefetch thread, one tensor each, so a request and a prefetch use two cores.
///
/// `@unchecked Sendable`: the mutable state lives in `Core`, touched only under its lock; decoded
/// buffers are written before they are published in the cache and freed only when unpinned and
/// evicted.
public final class TensorPager: @unchecked Sendable {
    public let container: ModelContainer
    public let budgetBytes: Int
    private let core: Core

    /// What the pager has done so far.
    public struct Statistics: Sendable, Equatable {
        /// Requests served from the cache (including tensors prefetched before they were asked for).
        public var hits = 0
        /// Requests that had to decode (or wait for a decode already running).
        public var misses = 0
        public var evictions = 0
        /// Tensors decoded by the prefetch thread.
        public var prefetched = 0
        /// Decoded bytes the cache holds now.
        public var residentBytes = 0
    }

    /// A pager over `container` holding at most `budgetBytes` of decoded tensors; starts the
    /// prefetch thread.
    public init(container: ModelContainer, budgetBytes: Int) {
        self.container = container
        self.budgetBytes = budgetBytes
        core = Core(container: container, budgetBytes: budgetBytes)
        let core = self.core
        let thread = Thread { core.prefetchLoop() }
        thread.name = "ember.storage.prefetch"
        thread.start()
    }

    deinit {
        core.stop()
    }

    public var statistics: Statistics { core.locked { $0.statistics } }

    /// Whether `name` is decoded and cached now.
    public func isResident(_ name: String) -> Bool { core.locked { $0.entries[name] != nil } }

    /// The names of the tensors of layer `layer` (`blk.N.*`), in file order.
    public func tensorNames(inLayer layer: Int) -> [String] {
        let prefix = "blk.\(layer)."
        return container.tensors.map(\.name).filter { $0.hasPrefix(prefix) }
    }

    /// Calls `body` with tensor `name`'s bytes, decoding them first unless cached. The bytes stay
    /// valid, and pinned in the cache, while `body` runs.
    public func withTensor<R>(named name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let entry = try core.acquire(name)
        defer { core.release(entry) }
        return try body(UnsafeRawBufferPointer(entry.buffer))
    }

    /// Queues tensors to be decoded on the background thread, in order; unknown and cached names
    /// are skipped.
    public func prefetch(names: [String]) {
        core.enqueue(names)
    }

    /// Queues every tensor of layer `layer` (`blk.N.*`).
    public func prefetch(layer: Int) {
        prefetch(names: tensorNames(inLayer: layer))
    }

    /// Blocks until the prefetch queue is empty and no prefetch decode runs (tests, benchmarks).
    public func waitForPrefetch() {
        core.waitForPrefetch()
    }

    // MARK: Internals

    /// One decoded tensor.
    final class Entry {
        let buffer: UnsafeMutableRawBufferPointer
        var pins = 0
        var lastUse: UInt64 = 0

        init(byteCount: Int) {
            buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 64)
        }

        deinit { buffer.deallocate() }
    }

    struct State {
        var entries: [String: Entry] = [:]
        /// Tensors being decoded now, by a request or the prefetcher.
        var loading: Set<String> = []
        var queue: [String] = []
        var clock: UInt64 = 0
        var statistics = Statistics()
        /// Bytes of decodes in progress, counted against the budget with the cache.
        var reservedBytes = 0
        var prefetching = false
        var stopping = false
    }

    /// The pager's state and the prefetch thread's loop; the thread holds only this, so the pager
    /// itself can be released (which stops the thread).
    ///
    /// `@unchecked Sendable`: `state` is touched only with `condition` locked.
    final class Core: @unchecked Sendable {
        let container: ModelContainer
        let budgetBytes: Int
        private let condition = NSCondition()
        private var state = State()

        init(container: ModelContainer, budgetBytes: Int) {
            self.container = container
            self.budgetBytes = budgetBytes
        }

        func locked<R>(_ body: (inout State) -> R) -> R {
            condition.lock()
            defer { condition.unlock() }
            return body(&state)
        }

        func stop() {
            locked { $0.stopping = true }
            condition.broadcast()
        }

        func enqueue(_ names: [String]) {
            locked { state in
                for name in names where state.entries[name] == nil && !state.queue.contains(name)
                    && container.tensor(named: name) != nil {
                    state.queue.append(name)
                }
            }
            condition.broadcast()
        }

        func waitForPrefetch() {
            condition.lock()
            while (!state.queue.isEmpty || state.prefetching) && !state.stopping { condition.wait() }
            condition.unlock()
        }

        /// Evicts least recently used unpinned tensors until `byteCount` more bytes fit; the lock
        /// is held. False when pinned tensors and decodes in progress leave no room.
        private func makeRoom(_ byteCount: Int) -> Bool {
            while state.statistics.residentBytes + state.reservedBytes + byteCount > budgetBytes {
                var oldest: (String, Entry)?
                for (name, entry) in state.entries where entry.pins == 0 {
                    if oldest == nil || entry.lastUse < oldest!.1.lastUse { oldest = (name, entry) }
                }
                guard let (name, entry) = oldest else { return false }
                state.entries[name] = nil
                state.statistics.residentBytes -= entry.buffer.count
                state.statistics.evictions += 1
            }
            return true
        }

        /// Decodes `name` into a new entry with the lock released; the lock is held on entry and on
        /// return. Room for it must have been made.
        private func decode(_ name: String, byteCount: Int) -> Result<Entry, StorageError> {
            state.reservedBytes += byteCount
            state.loading.insert(name)
            condition.unlock()
            let entry = Entry(byteCount: byteCount)
            let result: Result<Entry, StorageError>
            do throws(StorageError) {
                try container.readTensor(named: name, into: entry.buffer)
                result = .success(entry)
            } catch {
                result = .failure(error)
            }
            condition.lock()
            state.reservedBytes -= byteCount
            state.loading.remove(name)
            if case .success(let entry) = result {
                state.clock += 1
                entry.lastUse = state.clock
                state.entries[name] = entry
                state.statistics.residentBytes += byteCount
            }
            condition.broadcast()
            return result
        }

        func acquire(_ name: String) throws(StorageError) -> Entry {
            guard let tensor = container.tensor(named: name) else {
                throw StorageError(.unknownTensor, "\(container.path) has no tensor named '\(name)'")
            }
            guard tensor.byteCount <= budgetBytes else {
                throw StorageError(.budgetExceeded, "tensor '\(name)' needs \(tensor.byteCount) bytes but the pager's whole budget is \(budgetBytes); raise the budget or load the whole model at once")
            }
            condition.lock()
            defer { condition.unlock() }
            var missed = false
            while true {
                state.clock += 1
                if let entry = state.entries[name] {
                    entry.pins += 1
                    entry.lastUse = state.clock
                    if !missed { state.statistics.hits += 1 }
                    return entry
                }
                if !missed {
                    state.statistics.misses += 1
                    missed = true
                }
                if state.loading.contains(name) {
                    condition.wait()
                    continue
                }
                guard makeRoom(tensor.byteCount) else {
                    throw StorageError(.budgetExceeded, "tensor '\(name)' needs \(tensor.byteCount) bytes but tensors in use hold the rest of the \(budgetBytes)-byte budget")
                }
                switch decode(name, byteCount: tensor.byteCount) {
                case .success(let entry):
                    entry.pins += 1
                    return entry
                case .failure(let error):
                    throw error
                }
            }
        }

        func release(_ entry: Entry) {
            condition.lock()
            entry.pins -= 1
            condition.unlock()
            condition.broadcast()
        }

        func prefetchLoop() {
            condition.lock()
            defer { condition.unlock() }
            while !state.stopping {
                guard !state.queue.isEmpty else {
                    condition.wait()
                    continue
                }
                let name = state.queue.removeFirst()
                guard state.entries[name] == nil, !state.loading.contains(name),
                      let tensor = container.tensor(named: name), tensor.byteCount <= budgetBytes,
                      makeRoom(tensor.byteCount)
                else {
                    condition.broadcast()
                    continue
                }
                state.prefetching = true
                if case .success = decode(name, byteCount: tensor.byteCount) {
                    state.statistics.prefetched += 1
                }
                state.prefetching = false
                condition.broadcast()
            }
            condition.broadcast()
        }
    }
}
