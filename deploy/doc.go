// Package deploy holds what runs the hub elsewhere: the Helm chart
// (helm/imagehub), the Grafana dashboard and the Prometheus alert rules. Its
// tests render the chart with a pinned helm and decode every object
// strictly with the Kubernetes API types.
package deploy
