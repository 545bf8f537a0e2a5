// Command etcd is the etcd server, unchanged, built from go.etcd.io/etcd/server/v3
// so the local kube-apiserver has the etcd release its Kubernetes version expects.
// hack/infra/etcd.sh builds and starts it.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
