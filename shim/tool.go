package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"

	"github.com/agentic-jwt/patchcrew/ajwt"
)

// maxDenialBytes bounds how much of a refused response the tool wrapper reads.
const maxDenialBytes = 64 << 10

// ToolFunc is the body of a tool: it gets the model's input and an http.Client that
// carries the step's token and proofs, and returns the observation for the model.
type ToolFunc func(ctx context.Context, input string, hc *http.Client) (string, error)

// ToolEvent describes one tool call, for an Observer.
type ToolEvent struct {
	AgentID, InstanceID, ExecutionID, StepID, Tool string
	// Input is the model's input to the tool; Output the observation returned to it.
	Input, Output string
}

// Observer records tool calls (workflow step tracking, dashboards). Implementations must
// be safe for concurrent use.
type Observer interface {
	// ToolStart is called before the tool runs.
	ToolStart(ctx context.Context, ev ToolEvent)
	// ToolFinish is called after it ran; err is the failure that was turned into the
	// observation ev.Output, or nil.
	ToolFinish(ctx context.Context, ev ToolEvent, err error)
}

// Tool binds a ToolFunc to an agent, an execution and a step. It satisfies langchaingo's
// tools.Tool interface (Name, Description, Call) structurally. Call never returns a Go
// error for a failure (that would abort the langchaingo executor, DESIGN §4): refusals
// and errors become observations `error: <reason>: <description>`.
type Tool struct {
	name, description string
	agent             *Agent
	ex                *Execution
	step              string
	fn                ToolFunc
	obs               Observer
}

// NewTool binds fn, shown to the model as name and description, to step of ex run by
// agent. obs may be nil.
func NewTool(agent *Agent, ex *Execution, step, name, description string, fn ToolFunc, obs Observer) *Tool {
	return &Tool{name: name, description: description, agent: agent, ex: ex, step: step, fn: fn, obs: obs}
}

var _ http.RoundTripper = (*denialRecorder)(nil)

// Name implements tools.Tool.
func (t *Tool) Name() string { return t.name }

// Description implements tools.Tool.
func (t *Tool) Description() string { return t.description }

// Step returns the workflow step the tool is bound to.
func (t *Tool) Step() string { return t.step }

// Call implements tools.Tool: it runs the tool with an http.Client for the step and
// returns the observation. The returned error is always nil.
func (t *Tool) Call(ctx context.Context, input string) (string, error) {
	ev := ToolEvent{AgentID: t.agent.ID(), InstanceID: t.agent.InstanceID(), ExecutionID: t.ex.ID(), StepID: t.step, Tool: t.name, Input: input}
	if t.obs != nil {
		t.obs.ToolStart(ctx, ev)
	}
	out, err := t.run(ctx, input)
	if err != nil {
		out = Observation(err)
		t.agent.c.log.InfoContext(ctx, "tool refused", "agent_id", ev.AgentID, "execution_id", ev.ExecutionID, "step_id", t.step,
			"tool", t.name, "reason", string(ajwt.ReasonOf(err)))
	}
	ev.Output = out
	if t.obs != nil {
		t.obs.ToolFinish(ctx, ev, err)
	}
	return out, nil
}

// run calls the tool function; a refusal seen on the wire wins over what the function
// made of it.
func (t *Tool) run(ctx context.Context, input string) (out string, err error) {
	// DESIGN §5.4: a step's token is used only by the tool that is the step's action. A
	// step the workflow lacks is left to the IDP, which refuses and audits step_unknown.
	if st, ok := t.ex.Step(t.step); ok && st.Action != t.name {
		return "", ajwt.Forbidden(ajwt.ReasonForbidden, "tool %q may not use the token of step %q, whose action is %q", t.name, t.step, st.Action)
	}
	if t.fn == nil {
		return "", errors.New("tool has no implementation")
	}
	rec := &denialRecorder{base: t.agent.Transport(t.ex, t.step, nil)}
	hc := &http.Client{Transport: rec, Timeout: t.agent.c.hc.Timeout, CheckRedirect: sameHostRedirects}
	defer func() {
		if p := recover(); p != nil {
			out, err = "", fmt.Errorf("tool %s panicked: %v", t.name, p)
		}
	}()
	out, err = t.fn(ctx, input, hc)
	if d := rec.denial(); d != nil {
		return "", d
	}
	return out, err
}

// Observation renders an error as the text observation a model sees:
// `error: <reason>: <description>`, or `error: <message>` when it carries no reason.
func Observation(err error) string {
	var ae *ajwt.Error
	if errors.As(err, &ae) && ae.Reason != "" {
		if ae.Description == "" {
			return "error: " + string(ae.Reason)
		}
		return "error: " + string(ae.Reason) + ": " + ae.Description
	}
	return "error: " + err.Error()
}

// denialRecorder remembers the first refusal answered by the proxy or IDP: a non-2xx
// JSON response whose body carries a `reason`. The body is passed on unchanged.
type denialRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	err  *ajwt.Error
}

func (d *denialRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := d.base.RoundTrip(req)
	if err != nil || res.StatusCode < 300 {
		return res, err
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "application/json" {
		return res, nil
	}
	orig := res.Body
	b, rerr := io.ReadAll(io.LimitReader(orig, maxDenialBytes))
	// The caller still reads the whole body: what was read, then the rest.
	res.Body = readCloser{io.MultiReader(bytes.NewReader(b), orig), orig}
	if rerr != nil || len(b) == maxDenialBytes {
		return res, nil
	}
	var body ajwt.Body
	if json.Unmarshal(b, &body) == nil && body.Reason != "" {
		d.mu.Lock()
		if d.err == nil {
			d.err = &ajwt.Error{Status: res.StatusCode, Code: body.Error, Reason: body.Reason, Description: body.Description}
		}
		d.mu.Unlock()
	}
	return res, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

func (d *denialRecorder) denial() *ajwt.Error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}
