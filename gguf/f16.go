package gguf

import "math"

// Float32ToFloat16 converts to IEEE 754 binary16 with round-to-nearest-even,
// the rounding of ggml's conversion (F16C's vcvtps2ph and its C fallback).
// Values beyond the half range become infinity; NaN stays a quiet NaN.
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff

	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		// Keep the top payload bits and force the quiet bit so the result
		// cannot collapse into infinity.
		return sign | 0x7c00 | 0x200 | uint16(mant>>13)
	}
	if exp == 0 {
		// float32 zero or subnormal: far below half's smallest subnormal.
		return sign
	}

	halfExp := exp - 127 + 15
	if halfExp >= 31 {
		return sign | 0x7c00
	}
	if halfExp <= 0 {
		// Result is a half subnormal (or zero): the value is m·2^(exp-150)
		// with the implicit bit restored, and a half subnormal unit is
		// 2^-24, so the quotient is m >> (126-exp).
		shift := uint(126 - exp)
		if shift > 24 {
			return sign
		}
		m := mant | 0x800000
		return sign | uint16(roundShiftEven(m, shift))
	}
	// Normal: keep 10 mantissa bits and round on the 13 dropped ones. A
	// carry out of the mantissa correctly bumps the exponent (to infinity
	// at the top of the range).
	h := uint32(halfExp)<<10 | mant>>13
	rest := mant & 0x1fff
	if rest > 0x1000 || (rest == 0x1000 && h&1 == 1) {
		h++
	}
	return sign | uint16(h)
}

// roundShiftEven returns m >> s rounded to nearest, ties to even.
func roundShiftEven(m uint32, s uint) uint32 {
	q := m >> s
	rest := m & (1<<s - 1)
	half := uint32(1) << (s - 1)
	if rest > half || (rest == half && q&1 == 1) {
		q++
	}
	return q
}

// Float16ToFloat32 converts an IEEE 754 binary16 value exactly.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: mant·2^-24, exact in float32.
	v := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}

// Float32ToBFloat16 converts to bfloat16 with round-to-nearest-even, exactly
// as ggml does (NaN is kept quiet rather than rounded).
func Float32ToBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// BFloat16ToFloat32 converts a bfloat16 value exactly.
func BFloat16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}
