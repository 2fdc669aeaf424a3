//go:build tools

// The Pulumi CLI, pinned in go.mod to the release that matches @pulumi/pulumi
// in package-lock.json; install.sh builds it with `go build`.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
