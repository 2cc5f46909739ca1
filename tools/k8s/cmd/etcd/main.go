// Command etcd is the etcd server at the version k8s.io/kubernetes pins, for the test suite's
// control plane. etcd's own main package cannot be built with `go install pkg@version` because
// its go.mod carries replace directives, so this module imports the server as a library.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
