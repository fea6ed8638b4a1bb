import EmberCore

/// Plain scalar implementations of every block format: the specification the SIMD kernels are
/// tested against. They follow ggml's reference code element by element.
enum ReferenceKernels {
    // MARK: Dequantize

    static func dequantize(_ type: TensorType, _ source: UnsafeRawPointer, _ output: UnsafeMutablePointer<Float>, _ count: Int) {
        let blocks = count / type.blockSize
        let size = type.bytesPerBlock
        switch type {
        case .f32:
            for i in 0..<count { output[i] = source.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
        case .f16:
            for i in 0..<count { output[i] = loadHalf(source, 2 * i) }
        case .bf16:
            for i in 0..<count {
                let bits = UInt32(source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16
                output[i] = Float(bitPattern: bits)
            }
        case .q4_0:
            for b in 0..<blocks {
                let block = source + b * size, y = output + b * 32
                let d = loadHalf(block, 0)
                for j in 0..<16 {
                    let byte = block.load(fromByteOffset: 2 + j, as: UInt8.self)
                    y[j] = Float(Int(byte & 0x0F) - 8) * d
                    y[j + 16] = Float(Int(byte >> 4) - 8) * d
                }
            }
        case .q4_1:
            for b in 0..<blocks {
                let block = source + b * size, y = output + b * 32
                let d = loadHalf(block, 0), m = loadHalf(block, 2)
                for j in 0..<16 {
                    let byte = block.load(fromByteOffset: 4 + j, as: UInt8.self)
                    y[j] = Float(byte & 0x0F) * d + m
                    y[j + 16] = Float(byte >> 4) * d + m
                }
            }
        case .q5_0, .q5_1:
            let hasMin = type == .q5_1
            for b in 0..<blocks {
                let block = source + b * size, y = output + b * 32
                let d = loadHalf(block, 0), m = hasMin ? loadHalf(block, 2) : 0
                let highOffset = hasMin ? 4 : 2
                let high = block.loadUnaligned(fromByteOffset: highOffset, as: UInt32.self)
                for j in 0..<16 {
                    let byte = block.load(fromByteOffset: highOffset + 4 + j, as: UInt8.self)
                    let bit0 = UInt8((high >> UInt32(j)) & 1) << 4
                    let bit1 = UInt8((high >> UInt32(j + 16)) & 1) << 4
                    let q0 = Int((byte & 0x0F) | bit0), q1 = Int((byte >> 4) | bit1)
                    if hasMin {
                        y[j] = Float(q0) * d + m
                        y[j + 16] = Float(q1) * d + m
                    } else {
                        y[j] = Float(q0 - 16) * d
                        y[j + 16] = Float(q1 - 16) * d
                    }
                }
            }
        case .q8_0:
            for b in 0..<blocks {
                let block = source + b * size, y = output + b * 32
                let d = loadHalf(block, 0)
                for j in 0..<32 { y[j] = Float(block.load(fromByteOffset: 2 + j, as: Int8.self)) * d }
            }
        case .q8_1:
            for b in 0..<blocks {
                let block = source + b * size, y = output + b * 32
                let d = loadHalf(block, 0)
                for j in 0..<32 { y[j] = Float(block.load(fromByteOffset: 4 + j, as: Int8.self)) * d }
            }
        case .q8_K:
            for b in 0..<blocks {
                let block = source + b * size, y = output + b * 256
                let d = block.loadUnaligned(as: Float.self)
                for j in 0..<256 { y[j] = Float(block.load(fromByteOffset: 4 + j, as: Int8.self)) * d }
            }
        case .q4_K:
            for b in 0..<blocks {
                let block = source + b * size, y = output + b * 256
                let d = loadHalf(block, 0), dmin = loadHalf(block, 2)
                let scales = block + 4, quants = block + 16
                for group in 0..<4 {
                    let (scale0, min0) = scaleAndMinK4(2 * group, scales)
                    let (scale1, min1) = scaleAndMinK4(2 * group + 1, scales)
                    let d0 = d * Float(scale0), m0 = dmin * Float(min0)
                    let d1 = d * Float(scale1), m1 = dmin * Float(min1)
                    for l in 0..<32 {
                        let byte = quants.load(fromByteOffset: group * 32 + l, as: UInt8.self)
                        y[group * 64 + l] = d0 * Float(byte & 0x0F) - m0
                        y[group * 64 + 32 + l] = d1 * Float(byte >> 4) - m1
                    }
                }
            }
        case .q5_K:
            for b in 0..<blocks {
                let block = source + b * size, y = output + b * 256
                let d = loadHalf(block, 0), dmin = loadHalf(block, 2)
                let scales = block + 4, high = block + 16, quants = block + 48
                for group in 0..<4 {
                    let (scale0, min0) = scaleAndMinK4(2 * group, scales)
                    let (scale1, min1) = scaleAndMinK4(2 * group + 1, scales)
                    let d0 = d * Float(scale0), m0 = dmin * Float(min0)
                    let d1 = d * Float(scale1), m1 = dmin * Float(min1)
                    let mask0 = UInt8(1) << UInt8(2 * group), mask1 = UInt8(2) << UInt8(2 * group)
                    for l in 0..<32 {
                        let byte = quants.load(fromByteOffset: group * 32 + l, as: UInt8.self)
                        let h = high.load(fromByteOffset: l, as: UInt8.self)
                        y[group * 64 + l] = d0 * Float(Int(byte & 0x0F) + (h & mask0 != 0 ? 16 : 0)) - m0
                        y[group * 64 + 32 + l] = d1 * Float(Int(byte >> 4) + (h & mask1 != 0 ? 16 : 0)) - m1
                    }
                }
            }
        case .q6_K:
            for b in 0..<blocks {
                let block = source + b * size, y = output + b * 256
                let d = loadHalf(block, 208)
                for half in 0..<2 {
                    let low = block + half * 64, high = block + 128 + half * 32
                    let scales = block + 192 + half * 8
                    let out = y + half * 128
                    for l in 0..<32 {
                        let scaleIndex = l / 16
                        let ql0 = low.load(fromByteOffset: l, as: UInt8.self)
                        let ql1 = low.load(fromByteOffset: l + 32, as: UInt8.self)
                        let qh = high.load(fromByteOffset: l, as: UInt8.self)
                        let q1 = Int((ql0 & 0x0F) | ((qh >> 0) & 3) << 4) - 32
                        let q2 = Int((ql1 & 0x0F) | ((qh >> 2) & 3) << 4) - 32
                        let q3 = Int((ql0 >> 4) | ((qh >> 4) & 3) << 4) - 32
                        let q4 = Int((ql1 >> 4) | ((qh >> 6) & 3) << 4) - 32
                        func scale(_ index: Int) -> Float { Float(scales.load(fromByteOffset: index, as: Int8.self)) }
                        out[l] = d * scale(scaleIndex) * Float(q1)
                        out[l + 32] = d * scale(scaleIndex + 2) * Float(q2)
                        out[l + 64] = d * scale(scaleIndex + 4) * Float(q3)
                        out[l + 96] = d * scale(scaleIndex + 6) * Float(q4)
                    }
                }
            }
        case .q2_K, .q3_K, .i8, .i16, .i32, .i64, .f64:
            preconditionFailure("dequantize: \(type) is not supported")
        }
    }

    /// The 6-bit scale and min of sub-block `index` (0..<8) packed in the 12 bytes of a Q4_K/Q5_K block.
    @inline(__always)
    static func scaleAndMinK4(_ index: Int, _ scales: UnsafeRawPointer) -> (UInt8, UInt8) {
        func byte(_ i: Int) -> UInt8 { scales.load(fromByteOffset: i, as: UInt8.self) }
        if index < 4 {
            return (byte(index) & 63, byte(index + 4) & 63)
        }
        let scale = (byte(index + 4) & 0x0F) | ((byte(index - 4) >> 6) << 4)
        let minimum = (byte(index + 4) >> 4) | ((byte(index) >> 6) << 4)
        return (scale, minimum)
    }

    // MARK: Quantize

    /// Rounds half to even, as x86's `_mm256_round_ps(_MM_ROUND_NEAREST)` and ggml's `nearest_int` do.
    @inline(__always)
    static func roundToEven(_ x: Float) -> Int { Int(x.rounded(.toNearestOrEven)) }

    static func quantize(_ source: UnsafePointer<Float>, _ count: Int, _ type: TensorType, _ output: UnsafeMutableRawPointer) {
        let blocks = count / type.blockSize
        let size = type.bytesPerBlock
        switch type {
        case .f32:
            for i in 0..<count { output.storeBytes(of: source[i], toByteOffset: 4 * i, as: Float.self) }
        case .f16:
            for i in 0..<count { storeHalf(source[i], output, 2 * i) }
        case .q8_0, .q8_1:
            let withSum = type == .q8_1
            let quantOffset = withSum ? 4 : 2
            for b in 0..<blocks {
                let x = source + b * 32, block = output + b * size
                var amax: Float = 0
                for j in 0..<32 { amax = max(amax, abs(x[j])) }
                let d = amax / 127
                let inverse: Float = amax != 0 ? 127 / amax : 0
                storeHalf(d, block, 0)
                var sum = 0
                for j in 0..<32 {
                    let q = roundToEven(x[j] * inverse)
                    sum += q
                    block.storeBytes(of: Int8(q), toByteOffset: quantOffset + j, as: Int8.self)
                }
                if withSum { storeHalf(d * Float(sum), block, 2) }
            }
        case .q8_K:
            for b in 0..<blocks {
                let x = source + b * 256, block = output + b * size
                var amax: Float = 0, signedMax: Float = 0
                for j in 0..<256 where abs(x[j]) > amax {
                    amax = abs(x[j])
                    signedMax = x[j]
                }
                if amax == 0 {
                    block.initializeMemory(as: UInt8.self, repeating: 0, count: size)
                    continue
                }
                let inverseScale = -127 / signedMax
                for group in 0..<16 {
                    var sum = 0
                    for j in 0..<16 {
                        let q = min(127, roundToEven(inverseScale * x[group * 16 + j]))
                        sum += q
                        block.storeBytes(of: Int8(q), toByteOffset: 4 + group * 16 + j, as: Int8.self)
                    }
                    block.storeBytes(of: Int16(sum), toByteOffset: 4 + 256 + 2 * group, as: Int16.self)
                }
                block.storeBytes(of: 1 / inverseScale, as: Float.self)
            }
        case .q4_0:
            for b in 0..<blocks {
                let x = source + b * 32, block = output + b * size
                var amax: Float = 0, signedMax: Float = 0
                for j in 0..<32 where abs(x[j]) > amax {
                    amax = abs(x[j])
                    signedMax = x[j]
                }
                let d = signedMax / -8
                let inverse: Float = d != 0 ? 1 / d : 0
                storeHalf(d, block, 0)
                for j in 0..<16 {
                    let q0 = UInt8(min(15, Int8(x[j] * inverse + 8.5)))
                    let q1 = UInt8(min(15, Int8(x[j + 16] * inverse + 8.5)))
                    block.storeBytes(of: q0 | (q1 << 4), toByteOffset: 2 + j, as: UInt8.self)
                }
            }
        case .q4_1:
            for b in 0..<blocks {
                let x = source + b * 32, block = output + b * size
                var low = Float.greatestFiniteMagnitude, high = -Float.greatestFiniteMagnitude
                for j in 0..<32 {
                    low = min(low, x[j])
                    high = max(high, x[j])
                }
                let d = (high - low) / 15
                let inverse: Float = d != 0 ? 1 / d : 0
                storeHalf(d, block, 0)
                storeHalf(low, block, 2)
                for j in 0..<16 {
                    let q0 = UInt8(min(15, Int8((x[j] - low) * inverse + 0.5)))
                    let q1 = UInt8(min(15, Int8((x[j + 16] - low) * inverse + 0.5)))
                    block.storeBytes(of: q0 | (q1 << 4), toByteOffset: 4 + j, as: UInt8.self)
                }
            }
        case .q5_0:
            for b in 0..<blocks {
                let x = source + b * 32, block = output + b * size
                var amax: Float = 0, signedMax: Float = 0
                for j in 0..<32 where abs(x[j]) > amax {
                    amax = abs(x[j])
                    signedMax = x[j]
                }
                let d = signedMax / -16
                let inverse: Float = d != 0 ? 1 / d : 0
                storeHalf(d, block, 0)
                var high: UInt32 = 0
                for j in 0..<16 {
                    let q0 = UInt8(min(31, Int8(x[j] * inverse + 16.5)))
                    let q1 = UInt8(min(31, Int8(x[j + 16] * inverse + 16.5)))
                    block.storeBytes(of: (q0 & 0x0F) | ((q1 & 0x0F) << 4), toByteOffset: 6 + j, as: UInt8.self)
                    high |= UInt32((q0 & 0x10) >> 4) << UInt32(j)
                    high |= UInt32((q1 & 0x10) >> 4) << UInt32(j + 16)
                }
                block.storeBytes(of: high, toByteOffset: 2, as: UInt32.self)
            }
        default:
            preconditionFailure("quantize: \(type) is not supported")
        }
    }

    // MARK: Dot products

    /// Dot product of a weight row with an activation row in `Kernels.activationType(for:)`.
    static func dot(_ type: TensorType, _ weights: UnsafeRawPointer, _ activation: UnsafeRawPointer, _ count: Int) -> Float {
        let blocks = count / type.blockSize
        let size = type.bytesPerBlock
        switch type {
        case .f32, .f16:
            func element(_ pointer: UnsafeRawPointer, _ i: Int) -> Float {
                type == .f32 ? pointer.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) : loadHalf(pointer, 2 * i)
            }
            if type == .f32 && count % 16 != 0 { return dotF32VectorDot(weights, activation, count) }
            // Sixteen lanes of fused multiply-adds added in halves, then the rest in order.
            let vectorEnd = count / 16 * 16
            var lanes = [Float](repeating: 0, count: 16)
            for i in 0..<vectorEnd { lanes[i % 16].addProduct(element(weights, i), element(activation, i)) }
            var sum = ElementwiseKernels.sumInHalvesReference(lanes)
            for i in vectorEnd..<count { sum += element(weights, i) * element(activation, i) }
            return sum
        case .q8_0:
            // Eight lanes of four elements, fused multiply-adds by block, lanes added in halves.
            var lanes = [Float](repeating: 0, count: 8)
            for b in 0..<blocks {
                let w = weights + b * size, a = activation + b * 34
                let d = loadHalf(w, 0) * loadHalf(a, 0)
                for lane in 0..<8 {
                    var isum = 0
                    for k in (4 * lane)..<(4 * lane + 4) {
                        isum += Int(w.load(fromByteOffset: 2 + k, as: Int8.self)) * Int(a.load(fromByteOffset: 2 + k, as: Int8.self))
                    }
                    lanes[lane].addProduct(d, Float(isum))
                }
            }
            return ElementwiseKernels.sumInHalvesReference(lanes)
        case .q4_0, .q5_0:
            var sum: Float = 0
            var quants = [Int](repeating: 0, count: 32)
            for b in 0..<blocks {
                let w = weights + b * size, a = activation + b * 34
                integerQuants(type, w, &quants)
                var isum = 0
                for j in 0..<32 { isum += quants[j] * Int(a.load(fromByteOffset: 2 + j, as: Int8.self)) }
                sum += Float(isum) * loadHalf(w, 0) * loadHalf(a, 0)
            }
            return sum
        case .q4_1, .q5_1:
            var sum: Float = 0
            var quants = [Int](repeating: 0, count: 32)
            for b in 0..<blocks {
                let w = weights + b * size, a = activation + b * 36
                integerQuants(type, w, &quants)
                var isum = 0
                for j in 0..<32 { isum += quants[j] * Int(a.load(fromByteOffset: 4 + j, as: Int8.self)) }
                sum += loadHalf(w, 0) * loadHalf(a, 0) * Float(isum) + loadHalf(w, 2) * loadHalf(a, 2)
            }
            return sum
        case .q4_K, .q5_K:
            // Q4_K: ggml's repacked x86 order (two running fused sums, mins subtracted at the end).
            var sum: Float = 0, accumulated: Float = 0, minimums: Float = 0
            for b in 0..<blocks {
                let w = weights + b * size, a = activation + b * Q8_KBlock.bytes
                let scales = w + Q4_KBlock.scales
                let d = a.loadUnaligned(as: Float.self)
                var isum = 0, minimumSum = 0
                for sub in 0..<8 {
                    let (scale, minimum) = scaleAndMinK4(sub, scales)
                    var subSum = 0
                    for l in 0..<32 {
                        let index = sub * 32 + l
                        subSum += kQuant(type, w, index) * Int(a.load(fromByteOffset: Q8_KBlock.quants + index, as: Int8.self))
                    }
                    isum += Int(scale) * subSum
                    let blockSum = Int(a.loadUnaligned(fromByteOffset: Q8_KBlock.sums + 4 * sub, as: Int16.self))
                        + Int(a.loadUnaligned(fromByteOffset: Q8_KBlock.sums + 2 + 4 * sub, as: Int16.self))
                    minimumSum += Int(minimum) * blockSum
                }
                if type == .q4_K {
                    accumulated.addProduct(Float(isum), loadHalf(w, Q4_KBlock.scale) * d)
                    minimums.addProduct(Float(minimumSum), loadHalf(w, Q4_KBlock.minimumScale) * d)
                } else {
                    sum += d * loadHalf(w, 0) * Float(isum) - d * loadHalf(w, 2) * Float(minimumSum)
                }
            }
            return type == .q4_K ? accumulated - minimums : sum
        case .q6_K:
            var sum: Float = 0
            for b in 0..<blocks {
                let w = weights + b * size, a = activation + b * Q8_KBlock.bytes
                let d = a.loadUnaligned(as: Float.self) * loadHalf(w, Q6_KBlock.scale)
                var isum = 0
                for index in 0..<256 {
                    let (q, scale) = q6KQuant(w, index)
                    isum += scale * q * Int(a.load(fromByteOffset: 4 + index, as: Int8.self))
                }
                sum += d * Float(isum)
            }
            return sum
        default:
            preconditionFailure("dot: \(type) is not supported")
        }
    }

    /// The scalar twin of `VectorKernels.dotF32VectorDot` (`ggml_vec_dot_f32`'s order): four
    /// 16-lane accumulators per 64 elements, combined pairwise, added in halves, then the rest in
    /// order: rounded products added, the last (rest mod 8) fused.
    static func dotF32VectorDot(_ weights: UnsafeRawPointer, _ activation: UnsafeRawPointer, _ count: Int) -> Float {
        func element(_ pointer: UnsafeRawPointer, _ i: Int) -> Float { pointer.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
        let vectorEnd = count / 64 * 64
        var sum: Float = 0
        if vectorEnd > 0 {
            var lanes = [Float](repeating: 0, count: 64)
            for i in 0..<vectorEnd { lanes[i % 64].addProduct(element(weights, i), element(activation, i)) }
            var combined = [Float](repeating: 0, count: 16)
            for lane in 0..<16 {
                let first: Float = lanes[lane] + lanes[32 + lane]
                let second: Float = lanes[16 + lane] + lanes[48 + lane]
                combined[lane] = first + second
            }
            sum = ElementwiseKernels.sumInHalvesReference(combined)
        }
        let fusedStart = count - (count - vectorEnd) % 8
        for i in vectorEnd..<fusedStart { sum += element(weights, i) * element(activation, i) }
        for i in fusedStart..<count { sum.addProduct(element(weights, i), element(activation, i)) }
        return sum
    }

    /// Signed integer quants of one 32-element block (Q4_0, Q5_0, Q8_0: centred; Q4_1, Q5_1: unsigned).
    static func integerQuants(_ type: TensorType, _ block: UnsafeRawPointer, _ quants: inout [Int]) {
        switch type {
        case .q8_0:
            for j in 0..<32 { quants[j] = Int(block.load(fromByteOffset: 2 + j, as: Int8.self)) }
        case .q4_0, .q4_1:
            let offset = type == .q4_0 ? 2 : 4, bias = type == .q4_0 ? 8 : 0
            for j in 0..<16 {
                let byte = block.load(fromByteOffset: offset + j, as: UInt8.self)
                quants[j] = Int(byte & 0x0F) - bias
                quants[j + 16] = Int(byte >> 4) - bias
            }
        case .q5_0, .q5_1:
            let highOffset = type == .q5_0 ? 2 : 4, bias = type == .q5_0 ? 16 : 0
            let high = block.loadUnaligned(fromByteOffset: highOffset, as: UInt32.self)
            for j in 0..<16 {
                let byte = block.load(fromByteOffset: highOffset + 4 + j, as: UInt8.self)
                quants[j] = Int(byte & 0x0F) | Int((high >> UInt32(j)) & 1) << 4 - bias
                quants[j + 16] = Int(byte >> 4) | Int((high >> UInt32(j + 16)) & 1) << 4 - bias
            }
        default:
            preconditionFailure("integerQuants: \(type)")
        }
    }

    /// The unsigned quant of element `index` (0..<256) of a Q4_K or Q5_K block.
    @inline(__always)
    static func kQuant(_ type: TensorType, _ block: UnsafeRawPointer, _ index: Int) -> Int {
        let group = index / 64, within = index % 64
        let quantsOffset = type == .q4_K ? 16 : 48
        let byte = block.load(fromByteOffset: quantsOffset + group * 32 + within % 32, as: UInt8.self)
        var q = Int(within < 32 ? byte & 0x0F : byte >> 4)
        if type == .q5_K {
            let h = block.load(fromByteOffset: 16 + within % 32, as: UInt8.self)
            let bit = 2 * group + (within < 32 ? 0 : 1)
            if (h >> UInt8(bit)) & 1 != 0 { q += 16 }
        }
        return q
    }

    /// The centred quant and the integer scale of element `index` (0..<256) of a Q6_K block.
    @inline(__always)
    static func q6KQuant(_ block: UnsafeRawPointer, _ index: Int) -> (Int, Int) {
        let half = index / 128, within = index % 128
        let quarter = within / 32, l = within % 32
        let low = block + half * 64, high = block + 128 + half * 32
        let ql = low.load(fromByteOffset: l + (quarter & 1) * 32, as: UInt8.self)
        let nibble = quarter < 2 ? ql & 0x0F : ql >> 4
        let qh = (high.load(fromByteOffset: l, as: UInt8.self) >> UInt8(2 * quarter)) & 3
        let q = Int(nibble | (qh << 4)) - 32
        let scale = Int(block.load(fromByteOffset: 192 + half * 8 + l / 16 + 2 * quarter, as: Int8.self))
        return (q, scale)
    }
}
