package server

import (
	"encoding"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts the name of every environment variable the server reads.
const EnvPrefix = "ACTIOND_"

// envAliases are shorter names for keys people set often.
var envAliases = map[string]string{
	"ACTIOND_TOKENS": "ACTIOND_AUTH_TOKENS",
}

// envOther are ACTIOND_ variables that are not configuration keys but are
// read elsewhere (engine, model fetch) or by clients.
var envOther = []string{"ACTIOND_ORT_LIB", "ACTIOND_PPTSMV2_URL", "ACTIOND_ADDR", "ACTIOND_ADDRESS", "ACTIOND_SERVER", "ACTIOND_TOKEN"}

// LoadConfig reads the configuration file at path (none when path is "")
// and then applies the ACTIOND_* variables of environ on top: file, then
// environment; flags come last, set by the caller. ignored lists ACTIOND_
// variables that are no configuration key, for the caller to warn about.
func LoadConfig(path string, environ []string) (cfg Config, ignored []string, err error) {
	if path != "" {
		if err := LoadConfigFile(path, &cfg); err != nil {
			return Config{}, nil, err
		}
	}
	ignored, err = ApplyEnv(&cfg, environ)
	return cfg, ignored, err
}

// LoadConfigFile decodes the YAML file at path into c, strictly: a key that
// is not in Config is an error, as is a value of the wrong type; every error
// names its key and line.
func LoadConfigFile(path string, c *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return fmt.Errorf("config %s: %s", path, redactSecrets(err.Error()))
	}
	if len(root.Content) == 0 {
		return nil // an empty file: all defaults
	}
	var errs FieldErrors
	decodeNode(root.Content[0], reflect.ValueOf(c).Elem(), "", &errs)
	if err := errs.err(); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// decodeNode decodes n into v, recursing into mappings and lists of
// mappings so that every problem can name its key.
func decodeNode(n *yaml.Node, v reflect.Value, key string, errs *FieldErrors) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	where := key
	if where == "" {
		where = "(top level)"
	}
	switch t := v.Type(); {
	case t == reflect.TypeFor[SinksConfig]() && n.Kind == yaml.SequenceNode:
		// `sinks:` may be the list itself.
		decodeNode(n, v.FieldByName("List"), key, errs)
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return
			}
			errs.add(where, fmt.Sprintf("line %d: want a mapping of keys (%s), got %q", n.Line, strings.Join(yamlKeys(t), ", "), redactSecrets(n.Value)))
			return
		}
		fields := map[string]int{}
		for i := range t.NumField() {
			if tag := yamlTag(t.Field(i)); tag != "" {
				fields[tag] = i
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			// An error must name its key: an empty one, or a list or
			// mapping as key (FuzzConfig found "!0 :"), is spelt out.
			name := k.Value
			switch {
			case k.Kind == yaml.MappingNode || k.Kind == yaml.SequenceNode:
				name = "(a list or mapping as key)"
			case name == "":
				name = `""`
			}
			sub := name
			if key != "" {
				sub = key + "." + name
			}
			idx, ok := fields[k.Value]
			if !ok {
				errs.add(sub, fmt.Sprintf("unknown key (line %d); the keys here are %s", k.Line, strings.Join(yamlKeys(t), ", ")))
				continue
			}
			decodeNode(val, v.Field(idx), sub, errs)
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.SequenceNode {
			if n.Tag == "!!null" {
				return
			}
			errs.add(where, fmt.Sprintf("line %d: want a list", n.Line))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			decodeNode(item, s.Index(i), fmt.Sprintf("%s[%d]", key, i), errs)
		}
		v.Set(s)
	default:
		if err := n.Decode(v.Addr().Interface()); err != nil {
			got := n.Value
			if n.Kind != yaml.ScalarNode {
				got = "a " + map[yaml.Kind]string{yaml.MappingNode: "mapping", yaml.SequenceNode: "list"}[n.Kind]
			} else {
				got = fmt.Sprintf("%q", redactSecrets(got))
			}
			msg := fmt.Sprintf("want %s, got %s", describeType(t), got)
			if _, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok && n.Kind == yaml.ScalarNode {
				msg = strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  ")
				if strings.HasPrefix(msg, "line ") {
					msg = msg[strings.Index(msg, ":")+1:]
				}
				msg = redactSecrets(strings.TrimSpace(msg))
			}
			if n.Line > 0 {
				msg = fmt.Sprintf("line %d: %s", n.Line, msg)
			}
			errs.add(where, msg)
		}
	}
}

func yamlTag(f reflect.StructField) string {
	tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if tag == "-" || !f.IsExported() {
		return ""
	}
	return tag
}

func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if tag := yamlTag(t.Field(i)); tag != "" {
			keys = append(keys, tag)
		}
	}
	return keys
}

var durationType = reflect.TypeFor[time.Duration]()

// describeType says what a value of t looks like, for error messages.
func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return `a duration such as "10s", "1.5s" or "250ms"`
	case t == reflect.TypeFor[ByteSize]():
		return `a size such as "64MiB" or 1048576`
	case t == reflect.TypeFor[Pixels]():
		return `a pixel count such as 35389440 or "8192x4320"`
	case t.Kind() == reflect.Pointer:
		return describeType(t.Elem())
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Slice:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(describeType(t.Elem()), "a "), "an ") + "s"
	}
	return t.String()
}

// envVar is one configuration key reachable from the environment.
type envVar struct {
	key   string
	value reflect.Value
}

// envVars lists the environment variable of every scalar key of c, e.g.
// ACTIOND_INFERENCE_MAX_BATCH for inference.max_batch. Lists of strings
// are comma-separated; lists of mappings (streams) have none.
func envVars(c *Config) map[string]envVar {
	vars := map[string]envVar{}
	var walk func(v reflect.Value, key string)
	walk = func(v reflect.Value, key string) {
		t := v.Type()
		for i := range t.NumField() {
			tag := yamlTag(t.Field(i))
			if tag == "" {
				continue
			}
			sub := tag
			if key != "" {
				sub = key + "." + tag
			}
			f := v.Field(i)
			switch {
			case f.Kind() == reflect.Struct:
				walk(f, sub)
			case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
			default:
				name := EnvPrefix + strings.ToUpper(strings.ReplaceAll(sub, ".", "_"))
				vars[name] = envVar{key: sub, value: f}
			}
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
	return vars
}

// EnvNames returns the environment variable of every key that has one,
// sorted.
func EnvNames() []string {
	var c Config
	var names []string
	for name := range envVars(&c) {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// ApplyEnv sets the keys of c that environ (as os.Environ gives it) has an
// ACTIOND_ variable for. ignored lists the ACTIOND_ variables that are no
// configuration key.
func ApplyEnv(c *Config, environ []string) (ignored []string, err error) {
	vars := envVars(c)
	var errs FieldErrors
	env := map[string]string{}
	var names []string
	for _, kv := range environ {
		if name, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, EnvPrefix) {
			env[name] = val
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		val := env[name]
		if full, ok := envAliases[name]; ok {
			if _, both := env[full]; both {
				continue // the full name wins over its alias
			}
			name = full
		}
		v, ok := vars[name]
		if !ok {
			if !slices.Contains(envOther, name) {
				ignored = append(ignored, name)
			}
			continue
		}
		field := name + " (" + v.key + ")"
		switch {
		case v.value.Kind() == reflect.String:
			v.value.SetString(val)
		case v.value.Kind() == reflect.Pointer && v.value.Type().Elem().Kind() == reflect.String:
			// An empty value is a value ("" turns http_listen off), not
			// the default.
			v.value.Set(reflect.ValueOf(&val))
		case v.value.Kind() == reflect.Slice && v.value.Type().Elem().Kind() == reflect.String:
			var items []string
			for item := range strings.SplitSeq(val, ",") {
				if item = strings.TrimSpace(item); item != "" {
					items = append(items, item)
				}
			}
			v.value.Set(reflect.ValueOf(items))
		default:
			n := &yaml.Node{Kind: yaml.ScalarNode, Value: val}
			decodeNode(n, v.value, field, &errs)
		}
	}
	slices.Sort(ignored)
	if err := errs.err(); err != nil {
		return ignored, fmt.Errorf("environment: %w", err)
	}
	return ignored, nil
}
