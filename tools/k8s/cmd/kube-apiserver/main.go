// Command kube-apiserver is the upstream kube-apiserver, built from the k8s.io/kubernetes module
// for the test suite's control plane. It mirrors cmd/kube-apiserver/apiserver.go, which cannot be
// imported because it is a main package.
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones, as in the upstream binary

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
