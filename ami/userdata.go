package ami

import (
	"fmt"
	"strings"

	"github.com/ec2ops/ec2ops"
)

// Layer is one step of building a machine: what to install and how. A
// layer is applied either at bake time on the builder (the Baker) or at
// boot time on every instance (cloud-init user data); the Balancer decides
// which.
type Layer struct {
	// Name identifies the layer (e.g. "os", "patches", "runtime", "app",
	// "config").
	Name string
	// UserData is a cloud-init part: a shell script ("#!..."), a
	// "#cloud-config" document, or any format cloud-init accepts. It runs
	// at the builder's first boot (bake time) or at each instance's first
	// boot (boot time). Never logged.
	UserData string
	// Commands are shell commands. At bake time they run through the
	// ShellRunner (Systems Manager) after boot; at boot time they become a
	// shell script part of the user data. Never logged.
	Commands []string
}

func (l Layer) empty() bool { return strings.TrimSpace(l.UserData) == "" && len(l.Commands) == 0 }

// maxUserData is the RunInstances limit on user data before base64.
// Source: RunInstances API reference, UserData ("limited to 16 KB").
const maxUserData = 16 * 1024

// UserData renders layers as cloud-init user data: one part per layer's
// UserData, and a shell script part per layer's Commands (with set -eu, so
// a failing command stops the script), in layer order. One part is
// returned as it is; several become a MIME multi-part archive, which
// cloud-init processes part by part ("User-data formats", cloud-init
// documentation). The boundary is derived from the content, so the output
// is deterministic. It returns "" for no content and an error past 16 KB.
func UserData(layers []Layer) (string, error) {
	type part struct{ ctype, body string }
	var parts []part
	for _, l := range layers {
		if ud := strings.TrimSpace(l.UserData); ud != "" {
			parts = append(parts, part{partType(ud), l.UserData})
		}
		if len(l.Commands) > 0 {
			var b strings.Builder
			fmt.Fprintf(&b, "#!/bin/bash\n# ec2ops layer %s\nset -eu\n", l.Name)
			for _, c := range l.Commands {
				b.WriteString(c)
				b.WriteByte('\n')
			}
			parts = append(parts, part{"text/x-shellscript", b.String()})
		}
	}
	var out string
	switch len(parts) {
	case 0:
		return "", nil
	case 1:
		out = parts[0].body
	default:
		var all []string
		for _, p := range parts {
			all = append(all, p.ctype, p.body)
		}
		boundary := "==ec2ops-" + digest(all...) + "=="
		var b strings.Builder
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\nMIME-Version: 1.0\n", boundary)
		for i, p := range parts {
			fmt.Fprintf(&b, "\n--%s\nContent-Type: %s; charset=\"us-ascii\"\nMIME-Version: 1.0\nContent-Transfer-Encoding: 7bit\nContent-Disposition: attachment; filename=\"part-%02d\"\n\n%s",
				boundary, p.ctype, i+1, p.body)
			if !strings.HasSuffix(p.body, "\n") {
				b.WriteByte('\n')
			}
		}
		fmt.Fprintf(&b, "\n--%s--\n", boundary)
		out = b.String()
	}
	if len(out) > maxUserData {
		return "", ec2ops.InvalidInput("Layers", fmt.Sprintf("%d bytes", len(out)), "the user data exceeds the 16 KB RunInstances limit",
			"move large scripts to S3 and download them from a short script, or bake more layers into the image")
	}
	return out, nil
}

// partType is the MIME type cloud-init expects for a user-data part.
func partType(ud string) string {
	switch {
	case strings.HasPrefix(ud, "#cloud-config"):
		return "text/cloud-config"
	case strings.HasPrefix(ud, "#cloud-boothook"):
		return "text/cloud-boothook"
	case strings.HasPrefix(ud, "#include"):
		return "text/x-include-url"
	}
	return "text/x-shellscript"
}
