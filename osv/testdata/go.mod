module example.com/webapp

go 1.22

require (
	github.com/gin-gonic/gin v1.9.0
	golang.org/x/net v0.17.0 // indirect
	github.com/old/dep v1.0.0
	github.com/local/thing v0.1.0
	github.com/pinned/exact v1.2.0
	gopkg.in/yaml.v2 v2.2.2 // indirect
)

require github.com/docker/docker v20.10.0+incompatible

require golang.org/x/crypto v0.0.0-20220314234659-1baeb1ce4c0b // indirect

replace github.com/old/dep => github.com/new/dep v1.4.2

replace github.com/local/thing => ../thing

replace github.com/pinned/exact v1.2.0 => github.com/pinned/exact v1.2.1

replace github.com/pinned/exact v1.1.0 => github.com/pinned/exact v9.9.9
