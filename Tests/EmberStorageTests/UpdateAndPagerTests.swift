import EmberCore
import EmberGGUF
import Foundation
import Synchronization
import Testing
@testable import EmberStorage

@Suite("Container updates")
struct UpdateTests {
    /// Two GGUFs that differ in a few blocks of one tensor.
    static func models() -> (old: [UInt8], new: [UInt8], changedTensor: String) {
        let old = SampleModels.everyType(blocks: 60)
        let file = try! GGUFFile(bytes: old)
        let tensor = file.tensor(named: "blk.0.q4_K.weight")!
        var new = old
        let start = file.dataOffset + tensor.offset + tensor.byteCount / 2
        for offset in start..<(start + 20) { new[offset] ^= 0xA5 }
        return (old, new, tensor.name)
    }

    @Test("diff lists only the changed chunk; rebuild from old + patch gives the new container byte for byte")
    func diffAndRebuild() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (oldGGUF, newGGUF, changedTensor) = Self.models()
        let writer = ContainerWriter(level: 3, chunkByteCount: 2000, threads: 2)
        try writer.pack(ggufPath: directory.write("old.gguf", oldGGUF), to: directory.file("old.ggz"))
        try writer.pack(ggufPath: directory.write("new.gguf", newGGUF), to: directory.file("new.ggz"))
        let old = try ModelContainer(path: directory.file("old.ggz"))
        let new = try ModelContainer(path: directory.file("new.ggz"))

        let diff = ContainerDiff(old: old, new: new)
        #expect(diff.changedTensors == [changedTensor])
        #expect(diff.changed.count == 1, "20 bytes inside one 2000-byte chunk change one chunk")
        #expect(diff.reused.count == new.chunks.count - 1)
        #expect(diff.patchByteCount < new.header.containerByteCount / 2)

        try ContainerPatch.write(from: old, to: new, diff: diff, path: directory.file("update.ggzp"))
        #expect(try readFile(directory.file("update.ggzp")).count == diff.patchByteCount)
        try ContainerPatch.apply(old: old, patchPath: directory.file("update.ggzp"), outputPath: directory.file("rebuilt.ggz"))
        #expect(try readFile(directory.file("rebuilt.ggz")) == readFile(directory.file("new.ggz")))

        // The patch belongs to `old`; applying it to `new` is refused, and a damaged patch too.
        #expect(throws: StorageError.self) {
            try ContainerPatch.apply(old: new, patchPath: directory.file("update.ggzp"), outputPath: directory.file("wrong.ggz"))
        }
        var damaged = try readFile(directory.file("update.ggzp"))
        damaged[damaged.count / 2] ^= 1
        try directory.write("damaged.ggzp", damaged)
        do {
            try ContainerPatch.apply(old: old, patchPath: directory.file("damaged.ggzp"), outputPath: directory.file("bad.ggz"))
            Issue.record("a damaged patch was applied")
        } catch {
            #expect(error.code == .checksumMismatch)
        }
        #expect(!FileManager.default.fileExists(atPath: directory.file("bad.ggz")))
    }

    @Test("Identical containers: nothing to download")
    func identical() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let gguf = SampleModels.everyType(blocks: 10)
        try ContainerWriter(level: 3, chunkByteCount: 500).pack(ggufPath: directory.write("a.gguf", gguf), to: directory.file("a.ggz"))
        let container = try ModelContainer(path: directory.file("a.ggz"))
        let diff = ContainerDiff(old: container, new: container)
        #expect(diff.changed.isEmpty)
        #expect(diff.reused.count == container.chunks.count)
    }
}

@Suite("Tensor pager")
struct TensorPagerTests {
    /// A container of eight 4,000-byte Q8_0 tensors in two layers.
    static func container(in directory: TemporaryDirectory) throws -> (ModelContainer, [String: [UInt8]]) {
        var random = TestRandom(seed: 99)
        var writer = GGUFWriter()
        var tensors: [String: [UInt8]] = [:]
        for layer in 0..<2 {
            for name in ["attn_q", "attn_k", "ffn_up", "ffn_down"] {
                let bytes = SampleModels.tensorBytes(.q8_0, blocks: 4000 / 34 + 1, random: &random)
                let full = "blk.\(layer).\(name).weight"
                writer.addTensor(name: full, dimensions: [bytes.count / 34 * 32], type: .q8_0, data: bytes)
                tensors[full] = bytes
            }
        }
        let path = try directory.write("paged.gguf", writer.serialized())
        try ContainerWriter(level: 3, chunkByteCount: 1500).pack(ggufPath: path, to: directory.file("paged.ggz"))
        return (try ModelContainer(path: directory.file("paged.ggz")), tensors)
    }

    @Test("Tensors read back equal; the cache stays under budget, evicting the least recently used")
    func lru() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (container, tensors) = try Self.container(in: directory)
        let size = tensors["blk.0.attn_q.weight"]!.count
        let pager = TensorPager(container: container, budgetBytes: 3 * size)
        for name in ["blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.ffn_up.weight"] {
            try pager.withTensor(named: name) { #expect(Array($0) == tensors[name]!) }
        }
        // Touch attn_q so attn_k is the oldest; the next load evicts attn_k.
        try pager.withTensor(named: "blk.0.attn_q.weight") { _ in }
        try pager.withTensor(named: "blk.0.ffn_down.weight") { #expect(Array($0) == tensors["blk.0.ffn_down.weight"]!) }
        #expect(pager.isResident("blk.0.attn_q.weight"))
        #expect(!pager.isResident("blk.0.attn_k.weight"))
        let statistics = pager.statistics
        #expect(statistics.hits == 1)
        #expect(statistics.misses == 4)
        #expect(statistics.evictions == 1)
        #expect(statistics.residentBytes <= 3 * size)
    }

    @Test("Prefetch decodes a layer in the background; requests then hit the cache")
    func prefetch() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (container, tensors) = try Self.container(in: directory)
        let pager = TensorPager(container: container, budgetBytes: 1 << 20)
        #expect(pager.tensorNames(inLayer: 1).count == 4)
        pager.prefetch(layer: 1)
        pager.waitForPrefetch()
        #expect(pager.statistics.prefetched == 4)
        for name in pager.tensorNames(inLayer: 1) {
            try pager.withTensor(named: name) { #expect(Array($0) == tensors[name]!) }
        }
        #expect(pager.statistics.hits == 4)
        #expect(pager.statistics.misses == 0)
    }

    @Test("Pinned tensors are never evicted; what cannot fit is refused with a reason")
    func budget() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (container, tensors) = try Self.container(in: directory)
        let size = tensors["blk.0.attn_q.weight"]!.count
        let small = TensorPager(container: container, budgetBytes: size - 1)
        #expect(throws: StorageError.self) { try small.withTensor(named: "blk.0.attn_q.weight") { _ in } }
        #expect(throws: StorageError.self) { try small.withTensor(named: "no.such.tensor") { _ in } }

        let pager = TensorPager(container: container, budgetBytes: size + size / 2)
        try pager.withTensor(named: "blk.0.attn_q.weight") { outer in
            do {
                try pager.withTensor(named: "blk.0.attn_k.weight") { _ in }
                Issue.record("a second tensor fit beside a pinned one in a budget for one and a half")
            } catch let error as StorageError {
                #expect(error.code == .budgetExceeded)
            }
            #expect(Array(outer) == tensors["blk.0.attn_q.weight"]!)
        }
        // Unpinned now: the next tensor evicts it.
        try pager.withTensor(named: "blk.0.attn_k.weight") { #expect(Array($0) == tensors["blk.0.attn_k.weight"]!) }
        #expect(!pager.isResident("blk.0.attn_q.weight"))
    }

    @Test("Requests from several threads while prefetching get the right bytes")
    func concurrent() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (container, tensors) = try Self.container(in: directory)
        let size = tensors["blk.0.attn_q.weight"]!.count
        let pager = TensorPager(container: container, budgetBytes: 4 * size)
        let names = tensors.keys.sorted()
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for step in 0..<50 {
                let name = names[(thread * 3 + step) % names.count]
                if step % 7 == 0 { pager.prefetch(names: [names[(step + 1) % names.count]]) }
                do {
                    try pager.withTensor(named: name) { bytes in
                        if Array(bytes) != tensors[name]! { failures.withLock { $0 += 1 } }
                    }
                } catch {
                    // Four pinned tensors can fill the budget; that refusal is allowed here.
                }
            }
        }
        pager.waitForPrefetch()
        #expect(failures.withLock { $0 } == 0)
        #expect(pager.statistics.residentBytes <= 4 * size)
    }
}
