// Command kube-apiserver is the Kubernetes API server, unchanged, built from the
// published k8s.io/kubernetes module so the local infrastructure can run it
// without containers. hack/infra/kube.sh builds and starts it.
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones, even where the system has no zoneinfo

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client metrics on /metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // build info on /metrics
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
