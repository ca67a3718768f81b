// Command gitopshealth reports how Argo CD, Flux and kstatus judge objects, with the
// engines they use: gopher-lua (Argo CD's Lua 5.1 health checks), cel-go (Flux's
// healthCheckExprs) and sigs.k8s.io/cli-utils' kstatus.
//
// It loads the Lua health checks from the argocd-cm patches in one directory and the
// healthCheckExprs from the Flux Kustomizations in another (the shipped files), reads
// a JSON list of objects (or a List with items) on stdin, and prints one JSON result
// per object on stdout.
//
//	gitopshealth -argocd deploy/argocd -flux deploy/flux < objects.json
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

const healthPrefix = "resource.customizations.health."

// The statuses an Argo CD health check may return.
var argoStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true,
}

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

type result struct {
	Kind    string  `json:"kind"`
	Name    string  `json:"name"`
	Phase   string  `json:"phase,omitempty"`
	ArgoCD  verdict `json:"argocd"`
	Flux    verdict `json:"flux"`
	KStatus verdict `json:"kstatus"`
}

type fluxCheck struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Current    string `json:"current"`
	InProgress string `json:"inProgress"`
	Failed     string `json:"failed"`
}

// documents reads every YAML document of every *.yaml file in dir.
func documents(dir string) ([]map[string]any, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []map[string]any
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, doc := range bytes.Split(raw, []byte("\n---")) {
			var m map[string]any
			if err := yaml.Unmarshal(doc, &m); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if m != nil {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// luaScripts maps "<group>_<Kind>" to its health script, from argocd-cm patches.
func luaScripts(dir string) (map[string]string, error) {
	docs, err := documents(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, d := range docs {
		if d["kind"] != "ConfigMap" {
			continue
		}
		data, _ := d["data"].(map[string]any)
		for k, v := range data {
			if strings.HasPrefix(k, healthPrefix) {
				script, _ := v.(string)
				out[strings.TrimPrefix(k, healthPrefix)] = script
			}
		}
	}
	return out, nil
}

// fluxChecks maps "<apiVersion>/<Kind>" to its expressions, from Flux Kustomizations.
func fluxChecks(dir string) (map[string]fluxCheck, error) {
	docs, err := documents(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]fluxCheck{}
	for _, d := range docs {
		apiVersion, _ := d["apiVersion"].(string)
		if d["kind"] != "Kustomization" || !strings.HasPrefix(apiVersion, "kustomize.toolkit.fluxcd.io/") {
			continue
		}
		spec, _ := d["spec"].(map[string]any)
		raw, err := json.Marshal(spec["healthCheckExprs"])
		if err != nil {
			return nil, err
		}
		var checks []fluxCheck
		if err := json.Unmarshal(raw, &checks); err != nil {
			return nil, err
		}
		for _, c := range checks {
			out[c.APIVersion+"/"+c.Kind] = c
		}
	}
	return out, nil
}

// toLua turns decoded JSON into Lua values, as Argo CD hands the object to its scripts.
func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case float64:
		return lua.LNumber(x)
	case int64:
		return lua.LNumber(x)
	case json.Number:
		f, _ := x.Float64()
		return lua.LNumber(f)
	case string:
		return lua.LString(x)
	case []any:
		t := L.NewTable()
		for _, e := range x {
			t.Append(toLua(L, e))
		}
		return t
	case map[string]any:
		t := L.NewTable()
		for k, e := range x {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	}
	return lua.LString(fmt.Sprint(v))
}

// argoHealth runs one health script the way Argo CD does: the object in the global
// `obj`, a sandbox without os and io, and a table {status, message} returned.
func argoHealth(script string, obj map[string]any) verdict {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		return verdict{Status: "Unknown", Error: err.Error()}
	}
	table, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return verdict{Status: "Unknown", Error: "the script did not return a table"}
	}
	st := lua.LVAsString(table.RawGetString("status"))
	msg := lua.LVAsString(table.RawGetString("message"))
	if !argoStatuses[st] {
		return verdict{Status: "Unknown", Message: msg, Error: fmt.Sprintf("invalid health status %q", st)}
	}
	return verdict{Status: st, Message: msg}
}

// celProgram parses (does not compile) one expression in the environment Flux uses.
func celProgram(expr string) (cel.Program, error) {
	env, err := cel.NewEnv(
		cel.HomogeneousAggregateLiterals(),
		cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Sets(),
		ext.Encoders(),
	)
	if err != nil {
		return nil, err
	}
	ast, issues := env.Parse(expr)
	if issues != nil && issues.Err() != nil {
		return nil, issues.Err()
	}
	return env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.InterruptCheckFrequency(100))
}

// fluxHealth judges an object as kustomize-controller does with healthCheckExprs: a
// generation not yet observed is InProgress; then inProgress, failed, current in that
// order, the first true wins; none true is InProgress. An evaluation error is reported
// (Flux keeps waiting and retries until its timeout).
func fluxHealth(c fluxCheck, obj map[string]any) verdict {
	if og, ok, _ := unstructured.NestedInt64(obj, "status", "observedGeneration"); ok {
		if g, ok, _ := unstructured.NestedInt64(obj, "metadata", "generation"); ok && g != og {
			return verdict{Status: "InProgress", Message: "generation not yet observed"}
		}
	}
	if c.Current == "" {
		return verdict{Status: "Unknown", Error: "expression current not specified"}
	}
	for _, e := range []struct{ expr, status string }{
		{c.InProgress, "InProgress"}, {c.Failed, "Failed"}, {c.Current, "Current"},
	} {
		if e.expr == "" {
			continue
		}
		prog, err := celProgram(e.expr)
		if err != nil {
			return verdict{Status: "Unknown", Error: fmt.Sprintf("parsing %q: %v", e.expr, err)}
		}
		val, _, err := prog.ContextEval(context.Background(), obj)
		if err != nil {
			return verdict{Status: "Unknown", Error: fmt.Sprintf("evaluating %q: %v", e.expr, err)}
		}
		b, ok := val.(types.Bool)
		if !ok {
			return verdict{Status: "Unknown", Error: fmt.Sprintf("%q is not a boolean", e.expr)}
		}
		if b {
			return verdict{Status: e.status}
		}
	}
	return verdict{Status: "InProgress"}
}

func kstatus(obj map[string]any) verdict {
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	if err != nil {
		return verdict{Status: "Unknown", Error: err.Error()}
	}
	return verdict{Status: res.Status.String(), Message: res.Message}
}

func readObjects(r io.Reader) ([]map[string]any, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	// Numbers as the API machinery decodes them (int64 where integral), as every engine sees them.
	var list []map[string]any
	if err := utiljson.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var wrapped struct {
		Items []map[string]any `json:"items"`
	}
	if err := utiljson.Unmarshal(raw, &wrapped); err != nil {
		return nil, fmt.Errorf("stdin is neither a JSON list of objects nor a List: %w", err)
	}
	return wrapped.Items, nil
}

func main() {
	argoDir := flag.String("argocd", "deploy/argocd", "directory of argocd-cm patches")
	fluxDir := flag.String("flux", "deploy/flux", "directory of Flux Kustomizations")
	flag.Parse()
	if err := run(*argoDir, *fluxDir, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gitopshealth:", err)
		os.Exit(1)
	}
}

func run(argoDir, fluxDir string, in io.Reader, out io.Writer) error {
	scripts, err := luaScripts(argoDir)
	if err != nil {
		return err
	}
	checks, err := fluxChecks(fluxDir)
	if err != nil {
		return err
	}
	objects, err := readObjects(in)
	if err != nil {
		return err
	}
	results := make([]result, 0, len(objects))
	for _, obj := range objects {
		u := unstructured.Unstructured{Object: obj}
		gvk := u.GroupVersionKind()
		phase, _, _ := unstructured.NestedString(obj, "status", "phase")
		r := result{Kind: gvk.Kind, Name: u.GetName(), Phase: phase}
		if script, ok := scripts[gvk.Group+"_"+gvk.Kind]; ok {
			r.ArgoCD = argoHealth(script, obj)
		} else {
			r.ArgoCD = verdict{Status: "Unknown", Error: "no health check for " + gvk.Group + "_" + gvk.Kind}
		}
		if c, ok := checks[u.GetAPIVersion()+"/"+gvk.Kind]; ok {
			r.Flux = fluxHealth(c, obj)
		} else {
			r.Flux = verdict{Status: "Unknown", Error: "no healthCheckExprs for " + u.GetAPIVersion() + "/" + gvk.Kind}
		}
		r.KStatus = kstatus(obj)
		results = append(results, r)
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(results)
}
