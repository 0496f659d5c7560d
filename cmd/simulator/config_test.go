package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

func TestExampleConfigLoads(t *testing.T) {
	cfg, faults, _, err := loadConfig("example-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Accounts) != 1 || cfg.Accounts[0].PublicKey != "demo-public-key" || cfg.Accounts[0].PrivateKey != "demo-private-key" {
		t.Errorf("accounts %+v", cfg.Accounts)
	}
	if len(cfg.Backups) != 1 {
		t.Fatalf("backups %+v", cfg.Backups)
	}
	b := cfg.Backups[0]
	if b.ID != "00a1b68c-c7f5-4a52-9eac-d1c2e3f48f0e" || b.Region != "cn-bj2" || b.Zone != "cn-bj2-04" || b.GroupID != "mfweUQnQ" || len(b.Content) == 0 {
		t.Errorf("backup %+v", b)
	}
	if cfg.LinkLifetime != time.Hour || len(faults) != 0 {
		t.Errorf("lifetime %v faults %v", cfg.LinkLifetime, faults)
	}
}

func TestConfigContentFileAndFaults(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dump.rdb"), []byte("rdb"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c.json")
	text := `{"accounts":[{"publicKey":"a","privateKey":"b"}],
		"backups":[{"id":"x","region":"r","contentFile":"dump.rdb"}],
		"faultRate":{"rate":0.5,"retCodes":[153],"latency":"10ms"}}`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, faults, rate, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.Backups[0].Content) != "rdb" {
		t.Errorf("content %q", cfg.Backups[0].Content)
	}
	if rate != 0.5 || len(faults) != 2 || faults[0].Kind != simulator.FaultRetCode || faults[1].Latency != 10*time.Millisecond {
		t.Errorf("rate %v faults %+v", rate, faults)
	}
}

func TestConfigRejectsTypos(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("acounts: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := loadConfig(path); err == nil || !strings.Contains(err.Error(), "acounts") {
		t.Errorf("err = %v, want unknown field error", err)
	}
}
