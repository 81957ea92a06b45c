// gitops-health reads Kubernetes objects (a JSON array) on stdin and prints, for each,
// what the GitOps tools' own code says of its health: kstatus (sigs.k8s.io/cli-utils,
// what Flux's health checks and `wait: true` use) and an Argo CD health check in Lua
// (the file named by the first argument), run under gopher-lua, the interpreter Argo CD
// embeds, with the object as the global `obj` the way Argo CD passes it.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Name           string `json:"name"`
	Kstatus        string `json:"kstatus"`
	KstatusMessage string `json:"kstatusMessage"`
	Argo           string `json:"argo"`
	ArgoMessage    string `json:"argoMessage"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gitops-health HEALTH.lua < objects.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	check(err)
	input, err := io.ReadAll(os.Stdin)
	check(err)
	// Integers as int64, as the apiserver's own decoding gives them to kstatus.
	var objects []interface{}
	check(utiljson.Unmarshal(input, &objects))
	verdicts := []verdict{}
	for _, item := range objects {
		object, ok := item.(map[string]interface{})
		if !ok {
			check(fmt.Errorf("not an object: %v", item))
		}
		u := &unstructured.Unstructured{Object: object}
		result, err := status.Compute(u)
		check(err)
		health, message, err := argo(string(script), object)
		check(err)
		verdicts = append(verdicts, verdict{
			Name:           u.GetName(),
			Kstatus:        string(result.Status),
			KstatusMessage: result.Message,
			Argo:           health,
			ArgoMessage:    message,
		})
	}
	check(json.NewEncoder(os.Stdout).Encode(verdicts))
}

// argo runs a health check as Argo CD does: the libraries it opens, `obj` set to the
// object, the returned table's `status` and `message`.
func argo(script string, object map[string]interface{}) (string, string, error) {
	state := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer state.Close()
	for _, library := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		state.Push(state.NewFunction(library.open))
		state.Push(lua.LString(library.name))
		state.Call(1, 0)
	}
	state.SetGlobal("obj", toLua(state, object))
	if err := state.DoString(script); err != nil {
		return "", "", err
	}
	returned, ok := state.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("the health check returned %s, not a table", state.Get(-1).Type())
	}
	return returned.RawGetString("status").String(), returned.RawGetString("message").String(), nil
}

// toLua converts decoded JSON into Lua values: objects and arrays become tables
// (arrays 1-based), as Argo CD's conversion does.
func toLua(state *lua.LState, value interface{}) lua.LValue {
	switch value := value.(type) {
	case map[string]interface{}:
		table := state.NewTable()
		for key, item := range value {
			table.RawSetString(key, toLua(state, item))
		}
		return table
	case []interface{}:
		table := state.NewTable()
		for index, item := range value {
			table.RawSetInt(index+1, toLua(state, item))
		}
		return table
	case string:
		return lua.LString(value)
	case bool:
		return lua.LBool(value)
	case float64:
		return lua.LNumber(value)
	case int64:
		return lua.LNumber(value)
	case nil:
		return lua.LNil
	default:
		panic(fmt.Sprintf("unexpected JSON value %T", value))
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "gitops-health:", err)
		os.Exit(1)
	}
}
