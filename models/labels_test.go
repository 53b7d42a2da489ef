package models

import (
	"reflect"
	"strings"
	"testing"
)

func TestKinetics400(t *testing.T) {
	labels := Kinetics400()
	if len(labels) != 400 {
		t.Fatalf("got %d labels, want 400", len(labels))
	}
	for i, want := range map[int]string{0: "abseiling", 5: "archery", 161: "hurling_(sport)", 399: "zumba"} {
		if labels[i] != want {
			t.Errorf("label %d = %q, want %q", i, labels[i], want)
		}
	}
	labels[0] = "changed"
	if Kinetics400()[0] != "abseiling" {
		t.Error("Kinetics400 returned shared state")
	}
}

func TestParseLabelList(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{"indexed", "0 a b\n1 c_(d)\n", []string{"a b", "c_(d)"}, ""},
		{"plain", "walking\nrunning fast\n\n", []string{"walking", "running fast"}, ""},
		{"crlf and bom", "\ufeff0 x\r\n1 y\r\n", []string{"x", "y"}, ""},
		{"index out of order", "0 a\n2 b\n", nil, "label list line 2: index 2, want 1"},
		{"index missing", "0 a\nb\n", nil, `label list line 2: want "<index> <name>", got "b"`},
		{"duplicate", "a\nb\na\n", nil, `label list line 3: "a" repeats label 0`},
		{"empty", "\n\n", nil, "label list is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLabelList(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParseLabelList(f *testing.F) {
	f.Add(kinetics400Text)
	f.Add("a\nb\n")
	f.Fuzz(func(t *testing.T, in string) {
		labels, err := ParseLabelList(strings.NewReader(in))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, l := range labels {
			if l == "" || seen[l] {
				t.Fatalf("bad label list %q from %q", labels, in)
			}
			seen[l] = true
		}
	})
}
