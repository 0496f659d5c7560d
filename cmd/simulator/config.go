package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

// fileConfig is the --config file (YAML or JSON; YAML is a superset).
type fileConfig struct {
	LinkLifetime    string         `json:"linkLifetime,omitempty"` // Go duration, e.g. "1h"
	Seed            int64          `json:"seed,omitempty"`
	RetCodeAsString bool           `json:"retCodeAsString,omitempty"`
	RateLimit       float64        `json:"rateLimit,omitempty"`
	RateBurst       int            `json:"rateBurst,omitempty"`
	Accounts        []fileAccount  `json:"accounts"`
	Backups         []fileBackup   `json:"backups"`
	FaultRate       *fileFaultRate `json:"faultRate,omitempty"`
}

type fileAccount struct {
	PublicKey     string   `json:"publicKey"`
	PrivateKey    string   `json:"privateKey"`
	SecurityToken string   `json:"securityToken,omitempty"`
	Projects      []string `json:"projects,omitempty"`
}

type fileBackup struct {
	ID          string    `json:"id"`
	Region      string    `json:"region"`
	Zone        string    `json:"zone,omitempty"`
	GroupID     string    `json:"groupId,omitempty"`
	Name        string    `json:"name,omitempty"`
	Type        string    `json:"type,omitempty"`
	State       string    `json:"state,omitempty"`
	Time        time.Time `json:"time,omitempty"`
	Owner       string    `json:"owner,omitempty"`
	Content     string    `json:"content,omitempty"`
	ContentFile string    `json:"contentFile,omitempty"` // relative to the config file
}

// fileFaultRate lets a demo show the operator coping with a flaky API.
type fileFaultRate struct {
	Rate     float64  `json:"rate"`
	RetCodes []int    `json:"retCodes,omitempty"`
	Statuses []int    `json:"httpStatuses,omitempty"`
	Latency  Duration `json:"latency,omitempty"`
}

// Duration reads a Go duration string such as "250ms".
type Duration struct{ time.Duration }

// UnmarshalJSON parses a quoted Go duration.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"1h\": %w", err)
	}
	parsed, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = parsed
	return nil
}

// loadConfig reads path into a simulator.Config plus the faults to inject.
// Unknown fields are errors: a typo must not silently change the demo.
func loadConfig(path string) (simulator.Config, []simulator.Fault, float64, error) {
	raw, err := os.ReadFile(path) //nolint:gosec // G304: the file its --config flag names
	if err != nil {
		return simulator.Config{}, nil, 0, err
	}
	var fc fileConfig
	if err := yaml.UnmarshalStrict(raw, &fc); err != nil {
		return simulator.Config{}, nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	cfg, err := fc.toConfig(filepath.Dir(path))
	if err != nil {
		return simulator.Config{}, nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	faults, rate := fc.faults()
	return cfg, faults, rate, nil
}

func (fc fileConfig) toConfig(dir string) (simulator.Config, error) {
	cfg := simulator.Config{
		Seed:            fc.Seed,
		RetCodeAsString: fc.RetCodeAsString,
		RateLimit:       fc.RateLimit,
		RateBurst:       fc.RateBurst,
	}
	if fc.LinkLifetime != "" {
		d, err := time.ParseDuration(fc.LinkLifetime)
		if err != nil {
			return cfg, fmt.Errorf("linkLifetime: %w", err)
		}
		cfg.LinkLifetime = d
	}
	for _, a := range fc.Accounts {
		if a.PublicKey == "" || a.PrivateKey == "" {
			return cfg, fmt.Errorf("every account needs publicKey and privateKey")
		}
		cfg.Accounts = append(cfg.Accounts, simulator.Account{
			PublicKey: a.PublicKey, PrivateKey: a.PrivateKey, SecurityToken: a.SecurityToken, Projects: a.Projects,
		})
	}
	for _, b := range fc.Backups {
		backup, err := b.toBackup(dir)
		if err != nil {
			return cfg, err
		}
		cfg.Backups = append(cfg.Backups, backup)
	}
	return cfg, nil
}

func (b fileBackup) toBackup(dir string) (simulator.Backup, error) {
	if b.ID == "" || b.Region == "" {
		return simulator.Backup{}, fmt.Errorf("every backup needs id and region")
	}
	content := []byte(b.Content)
	if b.ContentFile != "" {
		if b.Content != "" {
			return simulator.Backup{}, fmt.Errorf("backup %s: give content or contentFile, not both", b.ID)
		}
		file := b.ContentFile
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		var err error
		if content, err = os.ReadFile(file); err != nil { //nolint:gosec // G304: a file that the --config file names
			return simulator.Backup{}, fmt.Errorf("backup %s: %w", b.ID, err)
		}
	}
	return simulator.Backup{
		ID: b.ID, Region: b.Region, Zone: b.Zone, GroupID: b.GroupID, Name: b.Name,
		Type: b.Type, State: b.State, Time: b.Time, Owner: b.Owner, Content: content,
	}, nil
}

func (fc fileConfig) faults() ([]simulator.Fault, float64) {
	if fc.FaultRate == nil {
		return nil, 0
	}
	var faults []simulator.Fault
	for _, code := range fc.FaultRate.RetCodes {
		faults = append(faults, simulator.Fault{Kind: simulator.FaultRetCode, RetCode: code})
	}
	for _, status := range fc.FaultRate.Statuses {
		faults = append(faults, simulator.Fault{Kind: simulator.FaultHTTPStatus, HTTPStatus: status})
	}
	if fc.FaultRate.Latency.Duration > 0 {
		faults = append(faults, simulator.Fault{Kind: simulator.FaultLatency, Latency: fc.FaultRate.Latency.Duration})
	}
	return faults, fc.FaultRate.Rate
}
