package integration

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

func TestSecretShapedForTheWorkload(t *testing.T) {
	f := newFixture(t, withOperatorOptions(func(o *operator.Options) { o.Policy.ForcedRefreshMinInterval = 0 }))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("shaped", func(e *uredisv1alpha1.RedisBackupExport) {
		e.Spec.Target = uredisv1alpha1.TargetSecret{
			Name:        "restore-env",
			Keys:        uredisv1alpha1.SecretKeys{BackupPath: "BACKUP_URL", ExpiresAt: "BACKUP_EXPIRES_AT", BackupID: "BACKUP_ID", Region: "BACKUP_REGION", InnerBackupPath: "BACKUP_INNER_URL"},
			Labels:      map[string]uredisv1alpha1.LabelValue{"team": "payments"},
			Annotations: map[string]uredisv1alpha1.AnnotationValue{"reloader.stakater.com/match": "true"},
		}
	}))
	export := f.eventuallyReady("shaped")

	secret, err := f.secret("restore-env")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(secret.Data).To(HaveLen(5))
	f.g.Expect(string(secret.Data["BACKUP_URL"])).To(Equal(export.Status.BackupPath))
	f.g.Expect(string(secret.Data["BACKUP_EXPIRES_AT"])).To(Equal(export.Status.ExpiresAt.UTC().Format(time.RFC3339)))
	f.g.Expect(string(secret.Data["BACKUP_ID"])).To(Equal(backupID))
	f.g.Expect(string(secret.Data["BACKUP_REGION"])).To(Equal(region))
	f.g.Expect(secret.Data).To(HaveKey("BACKUP_INNER_URL"))
	f.g.Expect(secret.Labels).To(HaveKeyWithValue("team", "payments"))
	f.g.Expect(secret.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "uredis-backup-operator"))
	f.g.Expect(secret.Annotations).To(HaveKeyWithValue("reloader.stakater.com/match", "true"))
	firstHash := secret.Annotations["uredis.dezai.com/data-hash"]
	f.g.Expect(firstHash).To(MatchRegexp(`^[0-9a-f]{32}$`))
	f.g.Expect(download(string(secret.Data["BACKUP_URL"]))).To(Equal("backup one"))

	// A new link changes the hash, so that workloads can roll. (Links carry
	// their expiry in whole seconds: wait for the next second so that the
	// new link differs.)
	time.Sleep(1100 * time.Millisecond)
	f.annotate("shaped", uredisv1alpha1.AnnotationRefreshRequestedAt, "1")
	f.g.Eventually(func() string {
		s, _ := f.secret("restore-env")
		return s.Annotations["uredis.dezai.com/data-hash"]
	}).WithTimeout(10 * time.Second).ShouldNot(Equal(firstHash))

	// Renaming a key again rewrites the Secret without the old key.
	f.updateSpec("shaped", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.Target.Keys.BackupPath = "DOWNLOAD_URL" })
	f.g.Eventually(func() []string {
		s, _ := f.secret("restore-env")
		var keys []string
		for k := range s.Data {
			keys = append(keys, k)
		}
		return keys
	}).WithTimeout(10 * time.Second).Should(And(ContainElement("DOWNLOAD_URL"), Not(ContainElement("BACKUP_URL"))))
}

func TestCreationPolicies(t *testing.T) {
	f := newFixture(t)
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("owned"))
	f.create(f.newExport("orphaned", func(e *uredisv1alpha1.RedisBackupExport) {
		e.Spec.Target.CreationPolicy = uredisv1alpha1.CreationPolicyOrphan
	}))
	owned := f.eventuallyReady("owned")
	f.eventuallyReady("orphaned")

	// Owner: garbage-collected with the resource (envtest runs no garbage
	// collector, so the owner reference it would act on is asserted).
	secret, err := f.secret("owned")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(secret.OwnerReferences).To(ConsistOf(And(HaveField("UID", owned.UID), HaveField("Kind", "RedisBackupExport"))))
	f.g.Expect(*secret.OwnerReferences[0].Controller).To(BeTrue())
	f.g.Expect(*secret.OwnerReferences[0].BlockOwnerDeletion).To(BeTrue())

	// Orphan: no owner reference, and the Secret survives the resource.
	orphan, err := f.secret("orphaned")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(orphan.OwnerReferences).To(BeEmpty())
	link := string(orphan.Data["backupPath"])
	f.g.Expect(f.c.Delete(f.ctx, f.get("orphaned"))).To(Succeed())
	f.g.Eventually(func() error { _, err := f.getErr("orphaned"); return err }).WithTimeout(10 * time.Second).Should(HaveOccurred())
	f.g.Consistently(func() string {
		s, err := f.secret("orphaned")
		if err != nil {
			return err.Error()
		}
		return string(s.Data["backupPath"])
	}).WithTimeout(3 * time.Second).Should(Equal(link))

	// Switching an existing resource to Orphan drops its owner reference.
	f.updateSpec("owned", func(e *uredisv1alpha1.RedisBackupExport) {
		e.Spec.Target.CreationPolicy = uredisv1alpha1.CreationPolicyOrphan
	})
	f.g.Eventually(func() int {
		s, _ := f.secret("owned")
		return len(s.OwnerReferences)
	}).WithTimeout(10 * time.Second).Should(BeZero())
}

func TestLatestPicksTheNewestSuccessfulBackupAcrossPages(t *testing.T) {
	const lifetime = 20 * time.Second
	base := time.Now().Add(-30 * 24 * time.Hour)
	f := newFixture(t, withLinkLifetime(lifetime), withOperatorOptions(shortLinks), withSimulator(func(c *simulator.Config) {
		// 250 backups of instance g1: three pages of 100. The newest
		// successful one sits on the second page; newer ones failed, are
		// still running, or belong to another instance or type.
		for i := range 250 {
			backupTime := base.Add(time.Duration(i%97) * time.Hour)
			if i == 150 {
				backupTime = base.Add(200 * time.Hour) // the newest good one
			}
			c.Backups = append(c.Backups, simulator.Backup{
				ID: fmt.Sprintf("g1-%03d", i), Region: region, Zone: zone, GroupID: "g1", Type: "Auto", State: simulator.StateSuccess,
				Time: backupTime, Content: []byte(fmt.Sprintf("backup %d", i)),
			})
		}
		c.Backups = append(c.Backups,
			simulator.Backup{ID: "g1-failed", Region: region, Zone: zone, GroupID: "g1", Type: "Auto", State: simulator.StateError, Time: base.Add(300 * time.Hour)},
			simulator.Backup{ID: "g1-running", Region: region, Zone: zone, GroupID: "g1", Type: "Auto", State: simulator.StateBackuping, Time: base.Add(301 * time.Hour)},
			simulator.Backup{ID: "g1-manual", Region: region, Zone: zone, GroupID: "g1", Type: "Manual", State: simulator.StateSuccess, Time: base.Add(302 * time.Hour), Content: []byte("manual")},
			simulator.Backup{ID: "g2-newer", Region: region, Zone: zone, GroupID: "g2", Type: "Auto", State: simulator.StateSuccess, Time: base.Add(400 * time.Hour)},
		)
	}))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("latest", func(e *uredisv1alpha1.RedisBackupExport) {
		e.Spec.BackupID = ""
		e.Spec.Latest = &uredisv1alpha1.LatestBackup{GroupID: "g1", BackupType: uredisv1alpha1.BackupTypeAuto}
	}))
	export := f.eventuallyReady("latest")
	f.g.Expect(export.Status.BackupID).To(Equal("g1-150"))
	secret, err := f.secret("latest")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(string(secret.Data["backupId"])).To(Equal("g1-150"))
	f.g.Expect(download(string(secret.Data["backupPath"]))).To(Equal("backup 150"))
	var offsets []string
	for _, call := range f.sim.Calls() {
		if call.Action == "DescribeURedisBackup" {
			offsets = append(offsets, call.Params["Offset"])
			f.g.Expect(call.Params).To(HaveKeyWithValue("GroupId", "g1"))
		}
	}
	f.g.Expect(offsets).To(Equal([]string{"0", "100", "200"}), "all three pages were read")

	// A new nightly backup is picked up at the next refresh.
	f.sim.AddBackup(simulator.Backup{ID: "g1-nightly", Region: region, Zone: zone, GroupID: "g1", Type: "Auto", State: simulator.StateSuccess, Time: time.Now(), Content: []byte("tonight")})
	f.g.Eventually(func() string { return f.get("latest").Status.BackupID }).WithTimeout(2 * lifetime).Should(Equal("g1-nightly"))
	secret, _ = f.secret("latest")
	f.g.Expect(download(string(secret.Data["backupPath"]))).To(Equal("tonight"))
}

func TestLatestWithoutAnySuccessfulBackupIsReported(t *testing.T) {
	f := newFixture(t, withOperatorOptions(func(o *operator.Options) { o.TransientBackoff.Base = time.Second }), withSimulator(func(c *simulator.Config) {
		c.Backups = append(c.Backups, simulator.Backup{ID: "only-running", Region: region, Zone: zone, GroupID: "g9", State: simulator.StateBackuping, Time: time.Now()})
	}))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("nothing", func(e *uredisv1alpha1.RedisBackupExport) {
		e.Spec.BackupID = ""
		e.Spec.Latest = &uredisv1alpha1.LatestBackup{GroupID: "g9"}
	}))
	cond := f.eventuallyNotReady("nothing", uredisv1alpha1.ReasonNoBackupFound)
	f.g.Expect(cond.Message).To(ContainSubstring(`"g9" has no successful backup`))
	f.g.Expect(f.sim.CallCount("DescribeURedisBackupURL")).To(BeZero())

	// The backup finishes: the next retry exports it.
	f.sim.SetBackupState("only-running", simulator.StateSuccess)
	f.g.Eventually(func() string { return conditionSummary(f.ready("nothing")) }).WithTimeout(30 * time.Second).Should(HavePrefix("True/"))
	f.g.Expect(f.get("nothing").Status.BackupID).To(Equal("only-running"))
}
