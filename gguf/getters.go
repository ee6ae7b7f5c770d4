package gguf

import "math"

// adviceMissingKey follows a missing-key error: usually the file is another
// kind of model than the command expects, or an old conversion.
const adviceMissingKey = "the file is not the kind of model expected here or was converted by an old tool; " + adviceReconvert

func (f *File) index(key string) (int, bool) {
	i, ok := f.kvIndex[key]
	return i, ok
}

// Get returns the value stored under key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.index(key)
	if !ok {
		return Value{}, false
	}
	return f.kvs[i].Value, true
}

// Has reports whether key is present.
func (f *File) Has(key string) bool {
	_, ok := f.kvIndex[key]
	return ok
}

// KVs returns all metadata in file order.
func (f *File) KVs() []KV { return append([]KV(nil), f.kvs...) }

// Tensor returns the descriptor of the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.tensorIndex[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

func (f *File) missing(key string) error {
	return fileErr(f.Path, ErrKeyMissing, "metadata key %q is missing; %s", key, adviceMissingKey)
}

func (f *File) wrongType(key string, got Value, want string) error {
	return fileErr(f.Path, ErrKeyType, "metadata key %q has type %s, expected %s; %s", key, got.TypeName(), want, adviceReconvert)
}

// scalar fetches a scalar of exactly type want, as llama.cpp's getters do.
func scalar[T any](f *File, key string, want ValueType) (T, error) {
	var zero T
	v, ok := f.Get(key)
	if !ok {
		return zero, f.missing(key)
	}
	x, isT := v.Data.(T)
	if v.Type != want || !isT {
		return zero, f.wrongType(key, v, want.String())
	}
	return x, nil
}

// array fetches an array whose elements have exactly type want.
func array[T any](f *File, key string, want ValueType) ([]T, error) {
	v, ok := f.Get(key)
	if !ok {
		return nil, f.missing(key)
	}
	x, isT := v.Data.([]T)
	if v.Type != TypeArray || v.Elem != want || !isT {
		return nil, f.wrongType(key, v, "array["+want.String()+"]")
	}
	return append([]T(nil), x...), nil
}

// String returns a string value.
func (f *File) String(key string) (string, error) { return scalar[string](f, key, TypeString) }

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, error) { return scalar[bool](f, key, TypeBool) }

// Uint32 returns a u32 value; other integer types are an error, because
// llama.cpp's u32 getters reject (or abort on) them too.
func (f *File) Uint32(key string) (uint32, error) { return scalar[uint32](f, key, TypeUint32) }

// Int32 returns an i32 value.
func (f *File) Int32(key string) (int32, error) { return scalar[int32](f, key, TypeInt32) }

// Uint64 returns a u64 value.
func (f *File) Uint64(key string) (uint64, error) { return scalar[uint64](f, key, TypeUint64) }

// Float32 returns an f32 value.
func (f *File) Float32(key string) (float32, error) { return scalar[float32](f, key, TypeFloat32) }

// Float64 returns an f64 value.
func (f *File) Float64(key string) (float64, error) { return scalar[float64](f, key, TypeFloat64) }

// Strings returns an array of strings.
func (f *File) Strings(key string) ([]string, error) { return array[string](f, key, TypeString) }

// Float32s returns an array of f32.
func (f *File) Float32s(key string) ([]float32, error) { return array[float32](f, key, TypeFloat32) }

// Int32s returns an array of i32.
func (f *File) Int32s(key string) ([]int32, error) { return array[int32](f, key, TypeInt32) }

// Uint32s returns an array of u32.
func (f *File) Uint32s(key string) ([]uint32, error) { return array[uint32](f, key, TypeUint32) }

// Integer returns an integer value of any of the eight integer types, for
// keys whose readers accept several widths. A u64 above MaxInt64 is an error.
func (f *File) Integer(key string) (int64, error) {
	v, ok := f.Get(key)
	if !ok {
		return 0, f.missing(key)
	}
	n, ok := integerOf(v.Data)
	if !v.Type.isInteger() || !ok {
		return 0, f.wrongType(key, v, "an integer")
	}
	return n, nil
}

// Integers returns an array of any integer element type as int64.
func (f *File) Integers(key string) ([]int64, error) {
	v, ok := f.Get(key)
	if !ok {
		return nil, f.missing(key)
	}
	if v.Type != TypeArray || !v.Elem.isInteger() {
		return nil, f.wrongType(key, v, "an integer array")
	}
	out := make([]int64, v.Len())
	for i := range out {
		n, ok := integerAt(v.Data, i)
		if !ok {
			return nil, f.wrongType(key, v, "an integer array with values below 2^63")
		}
		out[i] = n
	}
	return out, nil
}

func integerOf(x any) (int64, bool) {
	switch n := x.(type) {
	case uint8:
		return int64(n), true
	case int8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case int16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case int32:
		return int64(n), true
	case uint64:
		return int64(n), n <= math.MaxInt64
	case int64:
		return n, true
	}
	return 0, false
}

func integerAt(data any, i int) (int64, bool) {
	switch d := data.(type) {
	case []uint8:
		return int64(d[i]), true
	case []int8:
		return int64(d[i]), true
	case []uint16:
		return int64(d[i]), true
	case []int16:
		return int64(d[i]), true
	case []uint32:
		return int64(d[i]), true
	case []int32:
		return int64(d[i]), true
	case []uint64:
		return int64(d[i]), d[i] <= math.MaxInt64
	case []int64:
		return d[i], true
	}
	return 0, false
}

// Uint32OrArray mirrors llama.cpp's get_key_or_arr for per-layer counts
// (head counts, feed-forward length): the key holds either one u32 used for
// all n layers, or an array of exactly n u32/i32 values. Any other element
// type makes llama.cpp abort, so it is rejected here.
func (f *File) Uint32OrArray(key string, n int) ([]uint32, error) {
	v, ok := f.Get(key)
	if !ok {
		return nil, f.missing(key)
	}
	out := make([]uint32, n)
	switch {
	case v.Type == TypeUint32:
		for i := range out {
			out[i] = v.Data.(uint32)
		}
	case v.Type == TypeArray && (v.Elem == TypeUint32 || v.Elem == TypeInt32):
		if v.Len() != n {
			return nil, fileErr(f.Path, ErrKeyType, "metadata key %q has %d per-layer values but the model has %d layers; %s", key, v.Len(), n, adviceReconvert)
		}
		for i := range out {
			x, _ := integerAt(v.Data, i)
			out[i] = uint32(x)
		}
	default:
		return nil, f.wrongType(key, v, "u32 or array[u32] of per-layer values")
	}
	return out, nil
}

// WrongType is the error for a key whose value is not of the type wanted.
func (f *File) WrongType(key string, got Value, want string) error {
	return f.wrongType(key, got, want)
}

// IntegerAt is element i of an integer array value, and whether it is one that fits an
// int64.
func (v Value) IntegerAt(i int) (int64, bool) { return integerAt(v.Data, i) }
