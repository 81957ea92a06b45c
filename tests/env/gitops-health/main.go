// gitops-health reads Kubernetes objects (a JSON array) on stdin and prints, for each,
// what the GitOps tools' own code says of its health: kstatus (sigs.k8s.io/cli-utils,
// what Flux's health checks and `wait: true` use) and an Argo CD health check in Lua
// (the file named by the first argument), run under gopher-lua, the interpreter Argo CD
// embeds, with the object as the global `obj` the way Argo CD passes it.
//
// `gitops-health --action ACTION.lua` runs an Argo CD resource action on each object
// instead and prints the objects it returns; `--discovery DISCOVERY.lua` prints the
// actions each object offers.
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
	mode, path := "health", ""
	switch {
	case len(os.Args) == 2:
		path = os.Args[1]
	case len(os.Args) == 3 && (os.Args[1] == "--action" || os.Args[1] == "--discovery"):
		mode, path = os.Args[1][2:], os.Args[2]
	default:
		fmt.Fprintln(os.Stderr, "usage: gitops-health [--action|--discovery] SCRIPT.lua < objects.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(path)
	check(err)
	input, err := io.ReadAll(os.Stdin)
	check(err)
	// Integers as int64, as the apiserver's own decoding gives them to kstatus.
	var objects []interface{}
	check(utiljson.Unmarshal(input, &objects))
	if mode != "health" {
		results := []interface{}{}
		for _, item := range objects {
			object, ok := item.(map[string]interface{})
			if !ok {
				check(fmt.Errorf("not an object: %v", item))
			}
			result, err := action(string(script), object)
			check(err)
			results = append(results, result)
		}
		check(json.NewEncoder(os.Stdout).Encode(results))
		return
	}
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

// action runs a resource action or its discovery as Argo CD does (with the os library,
// which actions use for timestamps) and returns what the script returns, as JSON data.
func action(script string, object map[string]interface{}) (interface{}, error) {
	state := newState(true)
	defer state.Close()
	state.SetGlobal("obj", toLua(state, object))
	if err := state.DoString(script); err != nil {
		return nil, err
	}
	return fromLua(state.Get(-1)), nil
}

// newState opens the libraries Argo CD opens for health checks, and os for actions.
func newState(withOs bool) *lua.LState {
	state := lua.NewState(lua.Options{SkipOpenLibs: true})
	libraries := []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	}
	if withOs {
		libraries = append(libraries, struct {
			name string
			open lua.LGFunction
		}{lua.OsLibName, lua.OpenOs})
	}
	for _, library := range libraries {
		state.Push(state.NewFunction(library.open))
		state.Push(lua.LString(library.name))
		state.Call(1, 0)
	}
	return state
}

// fromLua converts a Lua value back into JSON data: a table with keys 1..n is an
// array, any other table an object.
func fromLua(value lua.LValue) interface{} {
	switch value := value.(type) {
	case *lua.LTable:
		if length := value.Len(); length > 0 {
			items := make([]interface{}, 0, length)
			for index := 1; index <= length; index++ {
				items = append(items, fromLua(value.RawGetInt(index)))
			}
			return items
		}
		object := map[string]interface{}{}
		value.ForEach(func(key, item lua.LValue) {
			object[key.String()] = fromLua(item)
		})
		return object
	case lua.LString:
		return string(value)
	case lua.LBool:
		return bool(value)
	case lua.LNumber:
		return float64(value)
	default:
		return nil
	}
}

// argo runs a health check as Argo CD does: the libraries it opens, `obj` set to the
// object, the returned table's `status` and `message`.
func argo(script string, object map[string]interface{}) (string, string, error) {
	state := newState(false)
	defer state.Close()
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
