module github.com/estuary-media/estuary

go 1.26.8

require github.com/pion/rtp v1.10.6

require (
	github.com/pion/randutil v0.1.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
)
