// Package options declares a command's options once, as tagged fields of a struct, and
// derives everything else from that declaration: the command-line flags, the YAML keys
// of --config, the CALFT_* environment variables, and the list a resumed run compares.
//
// A field is an option when it has a `mapstructure` tag (its name: the flag, the YAML
// key, and CALFT_<NAME> with - as _). `help` is its usage text. `resume` says how a
// resumed run treats it: "free" may change (threads, how often to save), "file" must
// name the same file (compared as files, not as path text), anything else must be
// equal. Embedded structs with `mapstructure:",squash"` contribute their fields, so
// commands share option groups (the model files, the CAL weights) with the same names.
package options

import (
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Field is one declared option of a config struct.
type Field struct {
	Name   string
	Help   string
	Resume string // "free", "file" or "" (must be equal)
	Value  reflect.Value
}

// Fields lists the options of the struct cfg points to, embedded groups included, in
// declaration order.
func Fields(cfg any) []Field {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic("options: Fields needs a pointer to a struct")
	}
	return fields(v.Elem())
}

func fields(v reflect.Value) []Field {
	var out []Field
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("mapstructure")
		if tag == "" || tag == "-" {
			continue
		}
		if strings.HasSuffix(tag, ",squash") {
			out = append(out, fields(v.Field(i))...)
			continue
		}
		out = append(out, Field{Name: tag, Help: sf.Tag.Get("help"), Resume: sf.Tag.Get("resume"), Value: v.Field(i)})
	}
	return out
}

// Register adds a flag for every option of cfg, with the option's current value as the
// default (so fill cfg with the defaults first).
func Register(fs *pflag.FlagSet, cfg any) {
	for _, f := range Fields(cfg) {
		switch p := f.Value.Addr().Interface().(type) {
		case *string:
			fs.StringVar(p, f.Name, *p, f.Help)
		case *int:
			fs.IntVar(p, f.Name, *p, f.Help)
		case *uint64:
			fs.Uint64Var(p, f.Name, *p, f.Help)
		case *float64:
			fs.Float64Var(p, f.Name, *p, f.Help)
		case *bool:
			fs.BoolVar(p, f.Name, *p, f.Help)
		case *[]string:
			fs.StringSliceVar(p, f.Name, *p, f.Help)
		default:
			panic(fmt.Sprintf("options: option %s has unsupported type %s", f.Name, f.Value.Type()))
		}
	}
}

// EnvName is the environment variable of an option: CALFT_CAL_LO for cal-lo.
func EnvName(name string) string {
	return "CALFT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Load completes cfg, whose flags were registered on fs and parsed: an option given as a
// flag keeps the flag's value; otherwise a CALFT_* variable sets it; otherwise the YAML
// file at configPath (when not ""); otherwise it keeps its default. Values are converted
// strictly: "2.5" is not a whole number, NaN and infinities are no option's value, and
// a YAML key that names no option is an error.
func Load(fs *pflag.FlagSet, cfg any, configPath string) error {
	yaml := map[string]any{}
	if configPath != "" {
		v := viper.New()
		v.SetConfigFile(configPath)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return fmt.Errorf("config %s: %w", configPath, err)
		}
		yaml = v.AllSettings()
	}
	known := map[string]bool{}
	for _, f := range Fields(cfg) {
		known[f.Name] = true
		if fl := fs.Lookup(f.Name); fl != nil && fl.Changed {
			if err := finite(f.Name, "flag --"+f.Name, f.Value); err != nil {
				return err
			}
			continue
		}
		if s, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if err := set(f.Value, s, "variable "+EnvName(f.Name)); err != nil {
				return err
			}
			continue
		}
		if y, ok := yaml[f.Name]; ok {
			if err := set(f.Value, y, fmt.Sprintf("%s: key %q", configPath, f.Name)); err != nil {
				return err
			}
		}
	}
	for k := range yaml {
		if !known[k] && fs.Lookup(k) == nil {
			var names []string
			for n := range known {
				names = append(names, n)
			}
			slices.Sort(names)
			return fmt.Errorf("config %s: unknown option %q (options: %s)", configPath, k, strings.Join(names, ", "))
		}
	}
	return nil
}

// set stores a value from the environment (a string) or YAML (a string, number, bool
// or list) into an option, refusing anything that does not convert exactly.
func set(dst reflect.Value, src any, from string) error {
	bad := func(why string) error {
		return fmt.Errorf("%s: %v is not a valid %s%s", from, src, kindName(dst), why)
	}
	switch dst.Kind() {
	case reflect.String:
		s, ok := src.(string)
		if !ok {
			return bad("")
		}
		dst.SetString(s)
	case reflect.Bool:
		switch x := src.(type) {
		case bool:
			dst.SetBool(x)
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(x))
			if err != nil {
				return bad("")
			}
			dst.SetBool(b)
		default:
			return bad("")
		}
	case reflect.Int, reflect.Uint64:
		n, err := wholeNumber(src)
		if err != nil {
			return bad(err.Error())
		}
		if dst.Kind() == reflect.Uint64 {
			if n < 0 {
				return bad(" (it must not be negative)")
			}
			dst.SetUint(uint64(n))
		} else {
			dst.SetInt(n)
		}
	case reflect.Float64:
		x, err := number(src)
		if err != nil {
			return bad("")
		}
		dst.SetFloat(x)
		return finite("", from, dst)
	case reflect.Slice:
		var out []string
		switch x := src.(type) {
		case string:
			for _, s := range strings.Split(x, ",") {
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s)
				}
			}
		case []any:
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return bad(" (a list of names)")
				}
				out = append(out, s)
			}
		default:
			return bad(" (a list of names)")
		}
		dst.Set(reflect.ValueOf(out))
	default:
		return fmt.Errorf("%s: options of type %s cannot be set", from, dst.Type())
	}
	return nil
}

// finite refuses NaN and infinite values of float options.
func finite(_ string, from string, v reflect.Value) error {
	if v.Kind() == reflect.Float64 && (math.IsNaN(v.Float()) || math.IsInf(v.Float(), 0)) {
		return fmt.Errorf("%s: %v is not a number an option can take; give a finite value", from, v.Float())
	}
	return nil
}

func kindName(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Int, reflect.Uint64:
		return "whole number"
	case reflect.Float64:
		return "number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "list"
	}
	return "text"
}

// wholeNumber converts YAML and environment values to an integer exactly.
func wholeNumber(src any) (int64, error) {
	switch x := src.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, fmt.Errorf(" (too large)")
		}
		return int64(x), nil
	case float64:
		if x != math.Trunc(x) || math.IsInf(x, 0) || math.IsNaN(x) || math.Abs(x) > 1<<53 {
			return 0, fmt.Errorf(" (it must be a whole number)")
		}
		return int64(x), nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, fmt.Errorf(" (it must be a whole number)")
		}
		return n, nil
	}
	return 0, fmt.Errorf("")
}

func number(src any) (float64, error) {
	switch x := src.(type) {
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case float64:
		return x, nil
	case string:
		return strconv.ParseFloat(strings.TrimSpace(x), 64)
	}
	return 0, fmt.Errorf("not a number")
}

// Diff lists the options of a and b (two configs of one type) that differ and must not:
// every option but those tagged resume:"free"; "file" options compare the files they
// name, so ./T/data.json and T/data.json are the same option value.
func Diff(a, b any) []string {
	fa, fb := Fields(a), Fields(b)
	var out []string
	for i, f := range fa {
		x, y := f.Value.Interface(), fb[i].Value.Interface()
		switch f.Resume {
		case "free":
			continue
		case "file":
			if sameFile(x.(string), y.(string)) {
				continue
			}
		default:
			if reflect.DeepEqual(x, y) {
				continue
			}
		}
		out = append(out, fmt.Sprintf("%s: was %v, now %v", f.Name, show(x), show(y)))
	}
	return out
}

// sameFile reports whether two paths name one file (or are both empty).
func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	if a == "" || b == "" {
		return false
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

func show(v any) string {
	if s, ok := v.(string); ok && s == "" {
		return `""`
	}
	return fmt.Sprint(v)
}
