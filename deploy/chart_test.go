package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/deepimageshub/imagehub/app"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/dispatch"
	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/tooltest"
)

const chart = "helm/imagehub"

// valueSets are the documented value sets the chart is tested with: the
// defaults and ci/*.yaml.
var valueSets = map[string][]string{
	"default":    nil,
	"minimal":    {"ci/minimal-values.yaml"},
	"production": {"ci/production-values.yaml"},
	"triton-pvc": {"ci/triton-pvc-values.yaml"},
}

func helm(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := tooltest.Binary("helm.sh/helm/v3/cmd/helm")
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	// No repositories, plugins or cache of the user's: helm reads only the chart.
	home := t.TempDir()
	cmd.Env = []string{"HOME=" + home, "HELM_CACHE_HOME=" + home, "HELM_CONFIG_HOME=" + home, "HELM_DATA_HOME=" + home}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), "helm %s\n%s%s", strings.Join(args, " "), errb.String(), out.String())
	return out.String()
}

// helmFails runs helm, which must fail, and returns what it said.
func helmFails(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := tooltest.Binary("helm.sh/helm/v3/cmd/helm")
	require.NoError(t, err)
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"HOME=" + home, "HELM_CACHE_HOME=" + home, "HELM_CONFIG_HOME=" + home, "HELM_DATA_HOME=" + home}
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "helm %s\n%s", strings.Join(args, " "), out)
	return string(out)
}

// chartValues is values.yaml with files laid over it, as helm merges them,
// so that a test compares what was rendered with what the values asked.
func chartValues(t *testing.T, files []string) map[string]any {
	t.Helper()
	var vals map[string]any
	for _, f := range append([]string{"values.yaml"}, files...) {
		b, err := os.ReadFile(filepath.Join(chart, f))
		require.NoError(t, err)
		var layer map[string]any
		require.NoError(t, yaml.Unmarshal(b, &layer), f)
		vals = mergeValues(vals, layer)
	}
	return vals
}

func mergeValues(base, over map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		b, bok := out[k].(map[string]any)
		o, ook := v.(map[string]any)
		if bok && ook {
			out[k] = mergeValues(b, o)
		} else {
			out[k] = v
		}
	}
	return out
}

// value is the value at a dotted path, such as "hub.port".
func value(t *testing.T, vals map[string]any, path string) any {
	t.Helper()
	var v any = vals
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		require.True(t, ok, "values: %s is not a map at %s", path, k)
		v, ok = m[k]
		require.True(t, ok, "values: no %s", path)
	}
	return v
}

func intValue(t *testing.T, vals map[string]any, path string) int64 {
	t.Helper()
	f, ok := value(t, vals, path).(float64)
	require.True(t, ok, "values: %s is not a number", path)
	return int64(f)
}

func stringValue(t *testing.T, vals map[string]any, path string) string {
	t.Helper()
	s, ok := value(t, vals, path).(string)
	require.True(t, ok, "values: %s is not a string", path)
	return s
}

func valuesArgs(files []string) []string {
	var args []string
	for _, f := range files {
		args = append(args, "-f", filepath.Join(chart, f))
	}
	return args
}

// keda and monitoring objects have no k8s.io/api types: these are the fields
// the chart uses, decoded as strictly as the rest.
type meta struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   map[string]any    `json:"metadata"`
	Spec       json.RawMessage   `json:"spec"`
	Data       map[string]string `json:"data,omitempty"`
}

type scaledObjectSpec struct {
	ScaleTargetRef struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Name       string `json:"name"`
	} `json:"scaleTargetRef"`
	MinReplicaCount int `json:"minReplicaCount"`
	MaxReplicaCount int `json:"maxReplicaCount"`
	PollingInterval int `json:"pollingInterval"`
	CooldownPeriod  int `json:"cooldownPeriod"`
	Triggers        []struct {
		Type              string            `json:"type"`
		Metadata          map[string]string `json:"metadata"`
		AuthenticationRef *struct {
			Name string `json:"name"`
		} `json:"authenticationRef,omitempty"`
	} `json:"triggers"`
}

type triggerAuthenticationSpec struct {
	SecretTargetRef []struct {
		Parameter string `json:"parameter"`
		Name      string `json:"name"`
		Key       string `json:"key"`
	} `json:"secretTargetRef"`
}

type serviceMonitorSpec struct {
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	Endpoints []struct {
		Port     string `json:"port"`
		Path     string `json:"path"`
		Interval string `json:"interval"`
	} `json:"endpoints"`
}

// newObject returns the typed object for an apiVersion and kind; a kind the
// test does not know fails, so every rendered object is checked.
func newObject(apiVersion, kind string) (any, bool) {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, true
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}, true
	case "v1 Service":
		return &corev1.Service{}, true
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, true
	case "batch/v1 Job":
		return &batchv1.Job{}, true
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, true
	case "networking.k8s.io/v1 Ingress":
		return &networkingv1.Ingress{}, true
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, true
	case "keda.sh/v1alpha1 ScaledObject":
		return &struct {
			meta
			Spec scaledObjectSpec `json:"spec"`
		}{}, true
	case "keda.sh/v1alpha1 TriggerAuthentication":
		return &struct {
			meta
			Spec triggerAuthenticationSpec `json:"spec"`
		}{}, true
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &struct {
			meta
			Spec serviceMonitorSpec `json:"spec"`
		}{}, true
	}
	return nil, false
}

func decodeStrict(doc []byte, into any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

// render runs helm template with the value files and further arguments
// (--set) and decodes every object strictly.
func render(t *testing.T, files []string, args ...string) map[string]any {
	t.Helper()
	args = append(append([]string{"template", "hub", chart, "--namespace", "imagehub"}, valuesArgs(files)...), args...)
	out := helm(t, args...)
	objects := map[string]any{}
	for _, doc := range strings.Split(out, "\n---") {
		if strings.TrimSpace(strings.TrimPrefix(doc, "---")) == "" {
			continue
		}
		var m meta
		require.NoError(t, yaml.Unmarshal([]byte(doc), &m), doc)
		if m.Kind == "" {
			continue // only comments
		}
		obj, ok := newObject(m.APIVersion, m.Kind)
		require.True(t, ok, "no type for %s %s", m.APIVersion, m.Kind)
		require.NoError(t, decodeStrict([]byte(doc), obj), "%s %s\n%s", m.APIVersion, m.Kind, doc)
		name := fmt.Sprint(m.Metadata["name"])
		key := m.Kind + "/" + name
		require.NotContains(t, objects, key, "rendered twice")
		objects[key] = obj
	}
	return objects
}

// object is the rendered object of key ("Kind/name") as type T, failing
// the test (not panicking) when it was not rendered or has another type.
func object[T any](t *testing.T, objects map[string]any, key string) T {
	t.Helper()
	o, ok := objects[key].(T)
	require.True(t, ok, "%s rendered as %T", key, objects[key])
	return o
}

func TestChartLint(t *testing.T) {
	t.Parallel()
	for name, files := range valueSets {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			helm(t, append([]string{"lint", "--strict", chart}, valuesArgs(files)...)...)
		})
	}
}

// TestChartRenders: with each documented value set every object decodes
// into its Kubernetes type with no unknown field, and every pod runs with
// the restricted security profile.
func TestChartRenders(t *testing.T) {
	t.Parallel()
	for name, files := range valueSets {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			objects := render(t, files)
			hub := objects["Deployment/hub"].(*appsv1.Deployment)
			cm := objects["ConfigMap/hub"].(*corev1.ConfigMap)
			require.Equal(t, "false", cm.Data["BUILTIN_WORKER"], "replicas share the database")
			require.Equal(t, "false", cm.Data["MIGRATE_ON_START"], "the hook Job migrates")
			// The hub accepts the settings the chart gives it.
			cfg, err := config.Load(func(k string) string {
				if k == "OIDC_CLIENT_SECRET" && cm.Data["OIDC_ISSUER"] != "" {
					return "from-the-secret"
				}
				return cm.Data[k]
			})
			require.NoError(t, err, "%v", cm.Data)
			require.False(t, cfg.BuiltinWorker)

			pod := hub.Spec.Template.Spec
			c := pod.Containers[0]
			require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
			require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
			require.NotNil(t, pod.Affinity.PodAntiAffinity)
			requireGracefulShutdown(t, chartValues(t, files), cm, pod)

			vals := chartValues(t, files)
			secrets := secretEnv(t, vals)
			require.Contains(t, secrets, "DATABASE_URL")
			requireSecretEnv(t, "Deployment/hub", c, secrets)
			for _, k := range []string{"DATABASE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "OIDC_CLIENT_SECRET"} {
				require.NotContains(t, cm.Data, k, "a secret in the ConfigMap")
			}

			migrate := objects["Job/hub-migrate"].(*batchv1.Job)
			require.Equal(t, "pre-install,pre-upgrade", migrate.Annotations["helm.sh/hook"])
			require.Equal(t, []string{"migrate"}, migrate.Spec.Template.Spec.Containers[0].Args)
			requireSecretEnv(t, "Job/hub-migrate", migrate.Spec.Template.Spec.Containers[0],
				map[string]corev1.SecretKeySelector{"DATABASE_URL": secrets["DATABASE_URL"]})
			if reg, ok := objects["Job/hub-register-model"].(*batchv1.Job); ok {
				requireSecretEnv(t, "Job/hub-register-model", reg.Spec.Template.Spec.Containers[0], secrets)
			}
			require.Contains(t, objects, "PodDisruptionBudget/hub")
			require.Contains(t, objects, "Service/hub")

			for key, obj := range objects {
				var spec *corev1.PodSpec
				switch o := obj.(type) {
				case *appsv1.Deployment:
					spec = &o.Spec.Template.Spec
				case *appsv1.StatefulSet:
					spec = &o.Spec.Template.Spec
				case *batchv1.Job:
					spec = &o.Spec.Template.Spec
				default:
					continue
				}
				requireRestricted(t, key, spec)
			}
			if value(t, vals, "triton.enabled") == true {
				checkTriton(t, objects, vals)
			}
			if name == "production" {
				checkProduction(t, objects)
				require.Len(t, secrets, 4, "production takes the database URL, the S3 keys and the OIDC secret from Secrets")
			}
		})
	}
}

// secretEnv is the environment the values say comes from Secrets: the
// database URL always, the S3 keys when s3.existingSecret is set, the
// OpenID client secret when OIDC is on.
func secretEnv(t *testing.T, vals map[string]any) map[string]corev1.SecretKeySelector {
	t.Helper()
	ref := func(secret, key string) corev1.SecretKeySelector {
		return corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}
	}
	env := map[string]corev1.SecretKeySelector{
		"DATABASE_URL": ref(stringValue(t, vals, "database.existingSecret"), stringValue(t, vals, "database.secretKey")),
	}
	if s3 := stringValue(t, vals, "s3.existingSecret"); s3 != "" {
		env["AWS_ACCESS_KEY_ID"] = ref(s3, stringValue(t, vals, "s3.accessKeyIdKey"))
		env["AWS_SECRET_ACCESS_KEY"] = ref(s3, stringValue(t, vals, "s3.secretAccessKeyKey"))
	}
	if value(t, vals, "oidc.enabled") == true {
		env["OIDC_CLIENT_SECRET"] = ref(stringValue(t, vals, "oidc.existingSecret"), stringValue(t, vals, "oidc.clientSecretKey"))
	}
	return env
}

// requireSecretEnv: c takes each of want from its Secret and key, and no
// secret variable, wanted or not, as a plain value.
func requireSecretEnv(t *testing.T, key string, c corev1.Container, want map[string]corev1.SecretKeySelector) {
	t.Helper()
	got := map[string]corev1.SecretKeySelector{}
	for _, e := range c.Env {
		switch e.Name {
		case "DATABASE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "OIDC_CLIENT_SECRET":
		default:
			continue
		}
		require.Empty(t, e.Value, "%s %s: %s as a plain value", key, c.Name, e.Name)
		require.NotNil(t, e.ValueFrom, "%s %s: %s", key, c.Name, e.Name)
		require.NotNil(t, e.ValueFrom.SecretKeyRef, "%s %s: %s from a Secret", key, c.Name, e.Name)
		got[e.Name] = *e.ValueFrom.SecretKeyRef
	}
	require.Equal(t, want, got, "%s %s: the Secrets and keys the values name", key, c.Name)
}

// requireGracefulShutdown: a stopping hub keeps serving while the
// endpoints forget it (the preStop sleep), then has SHUTDOWN_TIMEOUT to
// finish the longest request and then its jobs, and the kubelet waits for
// all of that and the 10 s the hub gives the jobs it cancels.
func requireGracefulShutdown(t *testing.T, vals map[string]any, cm *corev1.ConfigMap, pod corev1.PodSpec) {
	t.Helper()
	c := pod.Containers[0]
	require.NotNil(t, c.Lifecycle, "a preStop hook")
	require.NotNil(t, c.Lifecycle.PreStop.Sleep, "the kubelet sleeps: the image has no shell")
	drain := c.Lifecycle.PreStop.Sleep.Seconds
	require.Equal(t, intValue(t, vals, "hub.preStopSleepSeconds"), drain)
	require.Positive(t, drain)
	longest := int64(app.ReadTimeout / time.Second)
	require.GreaterOrEqual(t, intValue(t, vals, "hub.longestRequestSeconds"), longest, "an upload may take the server's ReadTimeout")
	longest = max(longest, intValue(t, vals, "hub.longestRequestSeconds"))
	forJobs := intValue(t, vals, "hub.shutdownTimeoutSeconds")
	shutdown, err := time.ParseDuration(cm.Data["SHUTDOWN_TIMEOUT"])
	require.NoError(t, err)
	require.GreaterOrEqual(t, int64(shutdown/time.Second), longest+forJobs, "the hub waits for the longest request, then its jobs")
	const cancelled = 10 // cmd/imagehub serve: StopAndCancel after SHUTDOWN_TIMEOUT
	require.Greater(t, *pod.TerminationGracePeriodSeconds, drain+int64(shutdown/time.Second)+cancelled,
		"the kubelet waits longer than the preStop sleep, the longest request, the jobs and their cancelling")
}

func requireRestricted(t *testing.T, key string, spec *corev1.PodSpec) {
	t.Helper()
	require.True(t, *spec.SecurityContext.RunAsNonRoot, key)
	require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, spec.SecurityContext.SeccompProfile.Type, key)
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		sc := c.SecurityContext
		require.NotNil(t, sc, "%s %s", key, c.Name)
		require.False(t, *sc.AllowPrivilegeEscalation, "%s %s", key, c.Name)
		require.True(t, *sc.ReadOnlyRootFilesystem, "%s %s", key, c.Name)
		require.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, "%s %s", key, c.Name)
		var tmp bool
		for _, m := range c.VolumeMounts {
			tmp = tmp || m.MountPath == "/tmp" || m.MountPath == "/repository"
		}
		require.True(t, tmp, "%s %s has a writable emptyDir", key, c.Name)
	}
}

func checkProduction(t *testing.T, objects map[string]any) {
	t.Helper()
	ing := objects["Ingress/hub"].(*networkingv1.Ingress)
	require.Equal(t, "images-example-com-tls", ing.Spec.TLS[0].SecretName)
	require.Contains(t, objects, "ServiceMonitor/hub")
	require.Contains(t, objects, "HorizontalPodAutoscaler/hub")
	hub := objects["Deployment/hub"].(*appsv1.Deployment)
	require.Nil(t, hub.Spec.Replicas, "the HPA owns the replica count")

	so := objects["ScaledObject/hub-triton"].(*struct {
		meta
		Spec scaledObjectSpec `json:"spec"`
	})
	trig := so.Spec.Triggers[0]
	require.Equal(t, "postgresql", trig.Type)
	require.Contains(t, trig.Metadata["query"], "queue = '"+jobs.QueueInfer+"'")
	require.Contains(t, trig.Metadata["query"], "kind = '"+jobs.InferArgs{}.Kind()+"'")
	require.NotEmpty(t, trig.Metadata["targetQueryValue"])
	require.Contains(t, objects, "TriggerAuthentication/hub-keda-pg")

	require.Contains(t, objects, "NetworkPolicy/hub-hub")
	require.Contains(t, objects, "NetworkPolicy/hub-triton")
}

// checkTriton: the GPU workers are a StatefulSet behind a headless
// Service, every pod the release may run is registered as one endpoint
// taking the model's capacity, so the hub's capacity grows with the pods
// KEDA starts; the registration never waits for a pod under KEDA; the
// model repository is the claim or the image the values name.
func checkTriton(t *testing.T, objects map[string]any, vals map[string]any) {
	t.Helper()
	sts := object[*appsv1.StatefulSet](t, objects, "StatefulSet/hub-triton")
	require.NotContains(t, objects, "Deployment/hub-triton")
	svc := object[*corev1.Service](t, objects, "Service/hub-triton")
	require.Equal(t, svc.Name, sts.Spec.ServiceName, "the pods' DNS names come from this Service")
	require.Equal(t, corev1.ClusterIPNone, svc.Spec.ClusterIP, "headless: one DNS name per pod")
	require.Equal(t, appsv1.ParallelPodManagement, sts.Spec.PodManagementPolicy)
	pod := sts.Spec.Template.Spec
	gpu := pod.Containers[0].Resources.Limits[corev1.ResourceName("nvidia.com/gpu")]
	require.Equal(t, int64(1), gpu.Value())

	keda := value(t, vals, "triton.keda.enabled") == true
	pods := intValue(t, vals, "triton.replicas")
	if keda {
		so := object[*struct {
			meta
			Spec scaledObjectSpec `json:"spec"`
		}](t, objects, "ScaledObject/hub-triton")
		require.Equal(t, "apps/v1", so.Spec.ScaleTargetRef.APIVersion)
		require.Equal(t, "StatefulSet", so.Spec.ScaleTargetRef.Kind)
		require.Equal(t, sts.Name, so.Spec.ScaleTargetRef.Name)
		require.Equal(t, intValue(t, vals, "triton.keda.minReplicas"), int64(so.Spec.MinReplicaCount))
		pods = intValue(t, vals, "triton.keda.maxReplicas")
		require.Equal(t, pods, int64(so.Spec.MaxReplicaCount))
		require.Nil(t, sts.Spec.Replicas, "KEDA owns the replica count")
	}
	model := object[*corev1.ConfigMap](t, objects, "ConfigMap/hub-model")
	var spec dispatch.Spec
	dec := json.NewDecoder(strings.NewReader(model.Data["model.json"]))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&spec), "models register reads it strictly")
	require.NoError(t, spec.Normalize())
	var want []string
	for i := range pods {
		want = append(want, fmt.Sprintf("http://%s-%d.%s.imagehub.svc:8000", sts.Name, i, svc.Name))
	}
	require.Equal(t, want, spec.Endpoints, "one endpoint per pod, never the Service's one address")
	perPod := intValue(t, vals, "triton.register.model.capacity")
	require.Equal(t, perPod, int64(spec.Capacity), "capacity is one pod's")
	require.Equal(t, perPod*pods, int64(len(spec.Endpoints)*spec.Capacity), "the hub's capacity is a pod's times the pods")

	reg := object[*batchv1.Job](t, objects, "Job/hub-register-model")
	require.Equal(t, "post-install,post-upgrade", reg.Annotations["helm.sh/hook"])
	args := reg.Spec.Template.Spec.Containers[0].Args
	require.Equal(t, []string{"models", "register"}, args[:2])
	i := slices.Index(args, "--wait")
	require.Positive(t, i, "%v", args)
	wait := args[i+1]
	if keda {
		// With minReplicas 0 no pod runs until the queue has jobs, which
		// need the model: the Job must not wait for one.
		require.Equal(t, "0s", wait, "saved at once, whatever runs")
	} else {
		require.Equal(t, "10m", wait, "every pod of a fixed count is expected")
	}
	require.Empty(t, reg.Spec.Template.Spec.InitContainers)

	var models *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == "models" {
			models = &pod.Volumes[i]
		}
	}
	require.NotNil(t, models)
	switch stringValue(t, vals, "triton.modelRepository.type") {
	case "pvc":
		require.NotNil(t, models.PersistentVolumeClaim, "the model repository is the claim")
		require.Equal(t, stringValue(t, vals, "triton.modelRepository.claimName"), models.PersistentVolumeClaim.ClaimName)
		require.True(t, models.PersistentVolumeClaim.ReadOnly)
		require.Empty(t, pod.InitContainers)
		for _, m := range pod.Containers[0].VolumeMounts {
			if m.Name == "models" {
				require.Equal(t, "/models", m.MountPath)
				require.True(t, m.ReadOnly, "every pod shares the claim read-only")
			}
		}
	case "image":
		require.NotNil(t, models.EmptyDir)
		require.Equal(t, stringValue(t, vals, "triton.modelRepository.image"), pod.InitContainers[0].Image)
	default:
		t.Fatalf("unknown triton.modelRepository.type")
	}
}

// TestChartFixedTriton: without KEDA the registration names exactly the
// pods of triton.replicas and waits for them.
func TestChartFixedTriton(t *testing.T) {
	t.Parallel()
	objects := render(t, []string{"ci/triton-pvc-values.yaml"}, "--set", "triton.keda.enabled=false", "--set", "triton.replicas=3")
	require.NotContains(t, objects, "ScaledObject/hub-triton")
	vals := chartValues(t, []string{"ci/triton-pvc-values.yaml"})
	vals["triton"].(map[string]any)["keda"].(map[string]any)["enabled"] = false
	vals["triton"].(map[string]any)["replicas"] = float64(3)
	checkTriton(t, objects, vals)
	require.Equal(t, int32(3), *object[*appsv1.StatefulSet](t, objects, "StatefulSet/hub-triton").Spec.Replicas)
}

// TestChartRefusesManagedSettings: hub.settings cannot turn the built-in
// worker back on, nor put a secret in the ConfigMap.
func TestChartRefusesManagedSettings(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"BUILTIN_WORKER", "DATABASE_URL"} {
		out := helmFails(t, "template", "hub", chart, "--set", "hub.settings."+key+"=x")
		require.Contains(t, out, "hub.settings."+key+" is set by the chart")
	}
}

// TestChartRefusesShortShutdown: the shutdown budget cannot be smaller
// than the longest an upload may take to arrive.
func TestChartRefusesShortShutdown(t *testing.T) {
	t.Parallel()
	out := helmFails(t, "template", "hub", chart, "--set", "hub.longestRequestSeconds=30")
	require.Contains(t, out, "hub.longestRequestSeconds must be at least 60")
}

// TestChartPrometheusTrigger: the alternative trigger reads the hub's queue
// gauge with max() across replicas.
func TestChartPrometheusTrigger(t *testing.T) {
	t.Parallel()
	out := helm(t, "template", "hub", chart, "-f", filepath.Join(chart, "ci/production-values.yaml"),
		"--set", "triton.keda.trigger=prometheus", "--set", "triton.keda.prometheusAddress=http://prometheus:9090")
	require.Contains(t, out, "type: prometheus")
	require.Contains(t, out, `imagehub_queue_jobs{queue=\"infer\"`)
	require.NotContains(t, out, "TriggerAuthentication")
}
