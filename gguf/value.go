package gguf

import (
	"fmt"
	"strings"
)

// ValueType is the on-disk type tag of a metadata value.
type ValueType uint32

// Metadata value types, numbered as in the GGUF specification.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = map[ValueType]string{
	TypeUint8: "u8", TypeInt8: "i8", TypeUint16: "u16", TypeInt16: "i16",
	TypeUint32: "u32", TypeInt32: "i32", TypeFloat32: "f32", TypeBool: "bool",
	TypeString: "string", TypeArray: "array", TypeUint64: "u64", TypeInt64: "i64",
	TypeFloat64: "f64",
}

// String names the type the way llama.cpp's logs do ("u32", "f32", ...).
func (t ValueType) String() string {
	if n, ok := valueTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// valid reports whether t is a type tag defined by the specification.
func (t ValueType) valid() bool {
	_, ok := valueTypeNames[t]
	return ok
}

// isInteger reports whether t is one of the eight integer types.
func (t ValueType) isInteger() bool {
	switch t {
	case TypeUint8, TypeInt8, TypeUint16, TypeInt16, TypeUint32, TypeInt32, TypeUint64, TypeInt64:
		return true
	}
	return false
}

// Value is one metadata value. Data holds the Go value matching Type:
// uint8, int8, uint16, int16, uint32, int32, float32, bool, string, uint64,
// int64 or float64. For arrays (Type == TypeArray) Elem is the element type
// and Data is the matching slice ([]uint8 ... []string, []bool), or []Value
// when the elements are themselves arrays (Elem == TypeArray).
type Value struct {
	Type ValueType
	Elem ValueType
	Data any
}

// Uint8Value and the functions below build metadata values for the Writer.
func Uint8Value(v uint8) Value { return Value{Type: TypeUint8, Data: v} }

// Int8Value builds an i8 value.
func Int8Value(v int8) Value { return Value{Type: TypeInt8, Data: v} }

// Uint16Value builds a u16 value.
func Uint16Value(v uint16) Value { return Value{Type: TypeUint16, Data: v} }

// Int16Value builds an i16 value.
func Int16Value(v int16) Value { return Value{Type: TypeInt16, Data: v} }

// Uint32Value builds a u32 value.
func Uint32Value(v uint32) Value { return Value{Type: TypeUint32, Data: v} }

// Int32Value builds an i32 value.
func Int32Value(v int32) Value { return Value{Type: TypeInt32, Data: v} }

// Float32Value builds an f32 value.
func Float32Value(v float32) Value { return Value{Type: TypeFloat32, Data: v} }

// BoolValue builds a bool value.
func BoolValue(v bool) Value { return Value{Type: TypeBool, Data: v} }

// StringValue builds a string value.
func StringValue(v string) Value { return Value{Type: TypeString, Data: v} }

// Uint64Value builds a u64 value.
func Uint64Value(v uint64) Value { return Value{Type: TypeUint64, Data: v} }

// Int64Value builds an i64 value.
func Int64Value(v int64) Value { return Value{Type: TypeInt64, Data: v} }

// Float64Value builds an f64 value.
func Float64Value(v float64) Value { return Value{Type: TypeFloat64, Data: v} }

// ArrayElem lists the Go types an array value can hold.
type ArrayElem interface {
	uint8 | int8 | uint16 | int16 | uint32 | int32 | float32 | bool | string | uint64 | int64 | float64
}

// ArrayValue builds an array value from a slice; the element type follows
// from the Go type. The slice is copied.
func ArrayValue[T ArrayElem](elems []T) Value {
	c := append([]T(nil), elems...)
	if c == nil {
		c = []T{}
	}
	return Value{Type: TypeArray, Elem: elemTypeOf(c), Data: c}
}

// NestedArrayValue builds an array whose elements are arrays. llama.cpp
// cannot read such files (its reader rejects them), so use this only for
// files meant for other readers.
func NestedArrayValue(elems []Value) Value {
	c := append([]Value(nil), elems...)
	if c == nil {
		c = []Value{}
	}
	return Value{Type: TypeArray, Elem: TypeArray, Data: c}
}

func elemTypeOf(data any) ValueType {
	switch data.(type) {
	case []uint8:
		return TypeUint8
	case []int8:
		return TypeInt8
	case []uint16:
		return TypeUint16
	case []int16:
		return TypeInt16
	case []uint32:
		return TypeUint32
	case []int32:
		return TypeInt32
	case []float32:
		return TypeFloat32
	case []bool:
		return TypeBool
	case []string:
		return TypeString
	case []uint64:
		return TypeUint64
	case []int64:
		return TypeInt64
	case []float64:
		return TypeFloat64
	case []Value:
		return TypeArray
	}
	return ValueType(^uint32(0))
}

// Len is the number of elements of an array value, 1 for a scalar.
func (v Value) Len() int {
	if v.Type != TypeArray {
		return 1
	}
	switch d := v.Data.(type) {
	case []uint8:
		return len(d)
	case []int8:
		return len(d)
	case []uint16:
		return len(d)
	case []int16:
		return len(d)
	case []uint32:
		return len(d)
	case []int32:
		return len(d)
	case []float32:
		return len(d)
	case []bool:
		return len(d)
	case []string:
		return len(d)
	case []uint64:
		return len(d)
	case []int64:
		return len(d)
	case []float64:
		return len(d)
	case []Value:
		return len(d)
	}
	return 0
}

// TypeName describes the type, e.g. "u32" or "array[string]".
func (v Value) TypeName() string {
	if v.Type == TypeArray {
		return "array[" + v.Elem.String() + "]"
	}
	return v.Type.String()
}

// check verifies that Data holds the Go type that Type (and Elem) announce,
// so that the writer never emits a value whose tag and bytes disagree.
func (v Value) check() error {
	if v.Type == TypeArray {
		if got := elemTypeOf(v.Data); got != v.Elem {
			return fmt.Errorf("array value announces %s elements but holds %T", v.Elem, v.Data)
		}
		if nested, ok := v.Data.([]Value); ok {
			for i, e := range nested {
				if e.Type != TypeArray {
					return fmt.Errorf("element %d of a nested array is %s, not an array", i, e.Type)
				}
				if err := e.check(); err != nil {
					return fmt.Errorf("element %d: %w", i, err)
				}
			}
		}
		return nil
	}
	ok := false
	switch v.Data.(type) {
	case uint8:
		ok = v.Type == TypeUint8
	case int8:
		ok = v.Type == TypeInt8
	case uint16:
		ok = v.Type == TypeUint16
	case int16:
		ok = v.Type == TypeInt16
	case uint32:
		ok = v.Type == TypeUint32
	case int32:
		ok = v.Type == TypeInt32
	case float32:
		ok = v.Type == TypeFloat32
	case bool:
		ok = v.Type == TypeBool
	case string:
		ok = v.Type == TypeString
	case uint64:
		ok = v.Type == TypeUint64
	case int64:
		ok = v.Type == TypeInt64
	case float64:
		ok = v.Type == TypeFloat64
	}
	if !ok {
		return fmt.Errorf("value announces type %s but holds %T", v.Type, v.Data)
	}
	return nil
}

// String renders the value for humans; long arrays are abbreviated.
func (v Value) String() string {
	if v.Type != TypeArray {
		if s, ok := v.Data.(string); ok {
			return fmt.Sprintf("%q", s)
		}
		return fmt.Sprint(v.Data)
	}
	const shown = 8
	n := v.Len()
	parts := make([]string, 0, min(n, shown))
	for i := 0; i < n && i < shown; i++ {
		parts = append(parts, elemString(v.Data, i))
	}
	s := "[" + strings.Join(parts, ", ")
	if n > shown {
		s += fmt.Sprintf(", ... (%d elements)", n)
	}
	return s + "]"
}

func elemString(data any, i int) string {
	switch d := data.(type) {
	case []string:
		return fmt.Sprintf("%q", d[i])
	case []Value:
		return d[i].String()
	case []uint8:
		return fmt.Sprint(d[i])
	case []int8:
		return fmt.Sprint(d[i])
	case []uint16:
		return fmt.Sprint(d[i])
	case []int16:
		return fmt.Sprint(d[i])
	case []uint32:
		return fmt.Sprint(d[i])
	case []int32:
		return fmt.Sprint(d[i])
	case []float32:
		return fmt.Sprint(d[i])
	case []bool:
		return fmt.Sprint(d[i])
	case []uint64:
		return fmt.Sprint(d[i])
	case []int64:
		return fmt.Sprint(d[i])
	case []float64:
		return fmt.Sprint(d[i])
	}
	return "?"
}

// KV is one metadata entry, in file order.
type KV struct {
	Key   string
	Value Value
}
