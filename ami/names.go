package ami

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ec2ops/ec2ops"
)

// NameVars are the values an AMI name template may use.
type NameVars struct {
	// Family fills {family}.
	Family string
	// Bake fills {bake}, the bake ID.
	Bake string
	// Base fills {base}, the base image ID.
	Base string
	// Time fills {date} (YYYYMMDD), {time} (hhmmss) and {timestamp}
	// (Unix seconds), in UTC.
	Time time.Time
}

// imageNameRE is what AWS accepts as an AMI name: 3 to 128 letters,
// digits and ( ) [ ] space . / - ' @ _. Source: CreateImage API reference,
// Name ("Constraints: 3-128 alphanumeric characters, parentheses (()),
// square brackets ([]), spaces ( ), periods (.), slashes (/), dashes (-),
// single quotes ('), at-signs (@), or underscores(_)").
var imageNameRE = regexp.MustCompile(`^[A-Za-z0-9()\[\] ./\-'@_]{3,128}$`)

// ValidImageName reports whether AWS accepts name as an AMI name.
func ValidImageName(name string) bool { return imageNameRE.MatchString(name) }

// ExpandName expands an AMI name template such as "app-{date}-{bake}":
// the placeholders {family}, {bake}, {base}, {date}, {time} and
// {timestamp} are replaced; any other {word}, or an unbalanced brace, is
// an error, and so is a result AWS would refuse as a name.
func ExpandName(tmpl string, v NameVars) (string, error) {
	var b strings.Builder
	rest := tmpl
	for {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			b.WriteString(rest)
			break
		}
		if rest[i] == '}' {
			return "", ec2ops.InvalidInput("Name", tmpl, "unbalanced '}'", "placeholders look like {date}")
		}
		b.WriteString(rest[:i])
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "", ec2ops.InvalidInput("Name", tmpl, "unbalanced '{'", "placeholders look like {date}")
		}
		key := rest[i+1 : i+j]
		switch key {
		case "family":
			b.WriteString(v.Family)
		case "bake":
			b.WriteString(v.Bake)
		case "base":
			b.WriteString(v.Base)
		case "date":
			b.WriteString(v.Time.UTC().Format("20060102"))
		case "time":
			b.WriteString(v.Time.UTC().Format("150405"))
		case "timestamp":
			fmt.Fprintf(&b, "%d", v.Time.Unix())
		default:
			return "", ec2ops.InvalidInput("Name", tmpl, fmt.Sprintf("unknown placeholder {%s}", key),
				"use {family}, {bake}, {base}, {date}, {time} or {timestamp}")
		}
		rest = rest[i+j+1:]
	}
	name := b.String()
	if !ValidImageName(name) {
		return "", ec2ops.InvalidInput("Name", name, "not a valid AMI name",
			"use 3-128 letters, digits, spaces and ( ) [ ] . / - ' @ _")
	}
	return name, nil
}
