// Command promqlutil reads the operator's alert rules and dashboard queries
// the way Prometheus does, for the tests and `make test-alerts`:
//
//	promqlutil names     < ["expr", ...]     > [{"names": [...], "error": "..."}, ...]
//	promqlutil rulefile  < kustomize output  > a promtool rule file
//
// names parses each PromQL expression of a JSON array with Prometheus's
// parser and prints the metric names it selects, in the same order; an
// expression that does not parse, or that selects metrics without naming
// them (a regular expression on __name__), gets an error instead.
//
// rulefile reads a stream of Kubernetes objects in YAML and prints the rule
// groups of every PrometheusRule among them as one rule file, the format
// promtool reads.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: promqlutil names|rulefile < input")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "names":
		err = names(os.Stdin, os.Stdout)
	case "rulefile":
		err = rulefile(os.Stdin, os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q: want names or rulefile", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "promqlutil:", err)
		os.Exit(1)
	}
}

// parsed is what names prints for one expression.
type parsed struct {
	Names []string `json:"names"`
	Error string   `json:"error,omitempty"`
}

func names(in io.Reader, out io.Writer) error {
	var exprs []string
	if err := json.NewDecoder(in).Decode(&exprs); err != nil {
		return fmt.Errorf("reading a JSON array of expressions: %w", err)
	}
	// The default options: no experimental functions, as a Prometheus
	// server has unless told otherwise.
	p := parser.NewParser(parser.Options{})
	results := make([]parsed, len(exprs))
	for i, input := range exprs {
		metricNames, err := metricNamesOf(p, input)
		results[i] = parsed{Names: metricNames}
		if err != nil {
			results[i].Error = err.Error()
		}
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(results)
}

// metricNamesOf returns the sorted metric names expr selects.
func metricNamesOf(p parser.Parser, input string) ([]string, error) {
	expr, err := p.ParseExpr(input)
	if err != nil {
		return nil, err
	}
	found := []string{}
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name != labels.MetricName {
				continue
			}
			if m.Type != labels.MatchEqual {
				err = errors.Join(err, fmt.Errorf("%s selects metrics by %s, which cannot be checked against the exported names", vs, m))
				continue
			}
			name = m.Value
		}
		if name != "" {
			found = append(found, name)
		}
		return nil
	})
	slices.Sort(found)
	return slices.Compact(found), err
}

// rulefile copies the spec.groups of every PrometheusRule in the input into
// one rule file.
func rulefile(in io.Reader, out io.Writer) error {
	var file struct {
		Groups []yaml.Node `yaml:"groups"`
	}
	dec := yaml.NewDecoder(in)
	for {
		var object struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				Groups []yaml.Node `yaml:"groups"`
			} `yaml:"spec"`
		}
		err := dec.Decode(&object)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the objects: %w", err)
		}
		if object.Kind != "PrometheusRule" {
			continue
		}
		if len(object.Spec.Groups) == 0 {
			return fmt.Errorf("PrometheusRule %s has no rule groups", object.Metadata.Name)
		}
		file.Groups = append(file.Groups, object.Spec.Groups...)
	}
	if len(file.Groups) == 0 {
		return errors.New("no PrometheusRule in the input")
	}
	enc := yaml.NewEncoder(out)
	enc.SetIndent(2)
	if err := enc.Encode(file); err != nil {
		return err
	}
	return enc.Close()
}
