package opsworks_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/opsworks"
)

func readExport(t testing.TB) opsworks.ImportInput {
	t.Helper()
	read := func(n string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "export", n+".json"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return opsworks.ImportInput{Stacks: read("stacks"), Layers: read("layers"), Apps: read("apps"), Instances: read("instances")}
}

func TestImport(t *testing.T) {
	res, err := opsworks.Import(readExport(t))
	if err != nil {
		t.Fatal(err)
	}
	st := res.Stack
	if st.Name != "Shop-Prod" || len(st.Layers) != 2 {
		t.Fatalf("stack %+v", st)
	}
	chef := st.Backend.(*opsworks.Chef)
	if chef.Source != (opsworks.Source{Type: "Git", Repository: "git@github.com:acme/shop-cookbooks.git", GetOptions: "branch:release-42"}) || chef.ChefClientVersion != "12" {
		t.Fatalf("chef %+v", chef)
	}
	web := st.Layers[0]
	if web.Name != "web" || !reflect.DeepEqual(web.RunLists[opsworks.Setup], []string{"recipe[nginx::default]", "recipe[shop::setup]"}) ||
		!reflect.DeepEqual(web.RunLists[opsworks.Shutdown], []string{"recipe[shop::drain]"}) || web.Timeouts[opsworks.Shutdown] != 2*time.Minute {
		t.Fatalf("web %+v", web)
	}
	if !reflect.DeepEqual(web.Selector, []opsworks.Selector{{Key: "tag:opsworks:stack", Values: []string{"Shop Prod"}}, {Key: "tag-key", Values: []string{"opsworks:layer:web"}}}) {
		t.Fatalf("selector %+v", web.Selector)
	}
	if !slices.Equal(st.Sensitive, []string{"shop.db.password"}) {
		t.Fatalf("sensitive %v", st.Sensitive)
	}
	if !reflect.DeepEqual(res.Instances, map[string][]string{"web": {"i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"}, "db-master": {"i-0aaaaaaaaaaaaaaa3"}}) {
		t.Fatalf("instances %v", res.Instances)
	}
	items := map[string]string{}
	for _, n := range res.NotCarried {
		items[n.Item] = n.Reason
	}
	for _, want := range []string{"Berkshelf", "data bags and search", "layer web default Setup recipes", "layer db-master type db-master",
		"layer web ELB draining before Shutdown", "layer web packages", "layer db-master EBS volume configurations", "layer web auto healing",
		"instance i-0aaaaaaaaaaaaaaa4", "instance onprem1", "instance i-0aaaaaaaaaaaaaaa2 load-based scaling", "app shop"} {
		if items[want] == "" {
			t.Errorf("NotCarried lacks %q (have %v)", want, slices.Sorted(func(yield func(string) bool) {
				for k := range items {
					if !yield(k) {
						return
					}
				}
			}))
		}
	}
	if !strings.Contains(items["app shop"], "1 secure environment variable") {
		t.Errorf("app reason %q", items["app shop"])
	}
	notes := strings.Join(res.Notes, "\n")
	for _, want := range []string{"taken as a branch", "SSH key was filtered", "opsworks:stack=Shop Prod", "shop.db.password was filtered"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}

func TestImportErrors(t *testing.T) {
	good := readExport(t)
	cases := map[string]opsworks.ImportInput{
		"empty":         {},
		"not json":      {Stacks: []byte("Stacks:\n- Name: x")},
		"wrong list":    {Stacks: []byte(`{"Layers": []}`)},
		"wrong type":    {Stacks: []byte(`{"Stacks": [{"Name": 42}]}`)},
		"no stack":      {Stacks: []byte(`{"Stacks": []}`)},
		"two stacks":    {Stacks: []byte(`{"Stacks": [{"StackId":"a","Name":"a"},{"StackId":"b","Name":"b"}]}`)},
		"bad json attr": {Stacks: []byte(`{"Stacks": [{"StackId":"a","Name":"a","CustomJson":"{not json"}]}`)},
		"puppet":        {Stacks: []byte(`{"Stacks": [{"StackId":"a","Name":"a","ConfigurationManager":{"Name":"Puppet"}}]}`)},
		"deep":          {Stacks: []byte(strings.Repeat("[", 20000) + strings.Repeat("]", 20000))},
		"layers shape":  {Stacks: good.Stacks, Layers: []byte(`{"Layers": {"LayerId": "x"}}`)},
		"recipes shape": {Stacks: good.Stacks, Layers: []byte(`{"Layers": [{"LayerId":"x","Name":"x","CustomRecipes":{"Setup":"a::b"}}]}`)},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := opsworks.Import(in)
			var ie *ec2ops.InputError
			if !errors.As(err, &ie) || ie.Fix == "" {
				t.Fatalf("err %v", err)
			}
		})
	}
}

// FuzzImport feeds malformed and hostile JSON (deep nesting, huge strings,
// wrong types, filtered secrets) to the importer: it returns a result or
// an ec2ops.InputError, never panics, and an imported stack is valid
// input for Plan except for what NotCarried says is missing.
func FuzzImport(f *testing.F) {
	good := readExport(f)
	f.Add(good.Stacks, good.Layers, good.Apps, good.Instances)
	f.Fuzz(func(t *testing.T, stacks, layers, apps, instances []byte) {
		res, err := opsworks.Import(opsworks.ImportInput{Stacks: stacks, Layers: layers, Apps: apps, Instances: instances})
		if err != nil {
			if !errors.Is(err, ec2ops.ErrInvalidInput) {
				t.Fatalf("not an InputError: %v", err)
			}
			if len(err.Error()) > 2000 {
				t.Fatalf("error of %d bytes quotes the input", len(err.Error()))
			}
			return
		}
		if res.Stack == nil || res.Stack.Name == "" {
			t.Fatalf("no stack: %+v", res)
		}
		for _, l := range res.Stack.Layers {
			for ev, rl := range l.RunLists {
				if err := (&opsworks.Chef{}).ValidateRunList(rl); err != nil {
					t.Fatalf("layer %s %s imported an invalid run list: %v", l.Name, ev, err)
				}
			}
		}
	})
}
