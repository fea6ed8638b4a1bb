/// Half-precision helpers. Swift's `Float16` converts with the CPU's instructions (F16C on
/// x86-64, FCVT on ARM), rounding to nearest even as ggml's conversions do.
@inline(__always)
func loadHalf(_ pointer: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(Float16(bitPattern: pointer.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

@inline(__always)
func storeHalf(_ value: Float, _ pointer: UnsafeMutableRawPointer, _ offset: Int) {
    pointer.storeBytes(of: Float16(value).bitPattern, toByteOffset: offset, as: UInt16.self)
}
