package plugin

import (
	"context"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dezai/uredis-backup-operator/internal/version"
)

// Default flag values.
const (
	DefaultTimeout     = 2 * time.Minute
	DefaultMinValidity = 5 * time.Minute
)

// NewCommand is kubectl-rbe's root command, with kubectl's connection
// flags (--kubeconfig, --context, --namespace...).
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	return newCommand(streams, nil)
}

// Setup adjusts a Plugin a command built, before it runs (tests set the
// poll interval).
type Setup func(*Plugin)

// NewCommandWithSetup is NewCommand with setup applied to every Plugin.
func NewCommandWithSetup(streams genericiooptions.IOStreams, setup Setup) *cobra.Command {
	return newCommand(streams, setup)
}

func newCommand(streams genericiooptions.IOStreams, setup Setup) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{
		Use:   "kubectl-rbe",
		Short: "Read RedisBackupExports, refresh their links, and get a link that stays valid long enough",
		Long: `kubectl rbe works with the RedisBackupExports of uredis-backup-operator.

The download link is a bearer credential: only "kubectl rbe url" prints it.`,
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl rbe"},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	flags.AddFlags(root.PersistentFlags())

	build := func() (*Plugin, error) {
		cfg, err := flags.ToRESTConfig()
		if err != nil {
			return nil, err
		}
		namespace, _, err := flags.ToRawKubeConfigLoader().Namespace()
		if err != nil {
			return nil, err
		}
		c, err := client.New(cfg, client.Options{Scheme: Scheme()})
		if err != nil {
			return nil, err
		}
		p := &Plugin{Client: c, Namespace: namespace, Clock: clock.RealClock{}, Out: streams.Out, ErrOut: streams.ErrOut}
		if f, ok := streams.ErrOut.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			p.Progress = true
		}
		if setup != nil {
			setup(p)
		}
		return p, nil
	}

	root.AddCommand(getCommand(build), refreshCommand(build), urlCommand(build), downloadCommand(build))
	return root
}

func getCommand(build func() (*Plugin, error)) *cobra.Command {
	var allNamespaces bool
	cmd := &cobra.Command{
		Use:   "get [NAME]",
		Short: "Show Ready, the backup, the link's time left, the next refresh and the last failure",
		Example: `  kubectl rbe get
  kubectl rbe get nightly -n team-a
  kubectl rbe get -A`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := build()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return p.Get(cmd.Context(), name, allNamespaces)
		},
	}
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "List the RedisBackupExports of every namespace.")
	return cmd
}

func refreshCommand(build func() (*Plugin, error)) *cobra.Command {
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "refresh NAME",
		Short: "Ask the operator for a new link (the refresh-requested-at annotation); with --wait, wait for its answer",
		Long: `Sets the annotation uredis.dezai.com/refresh-requested-at to a new value.

With --wait, returns once status.lastHandledRefreshRequest acknowledges that
value, printing the new link's expiry. It exits non-zero, with the reason,
when the refresh failed, when the operator declined it (forced refreshes come
at least --forced-refresh-min-interval, 30s by default, after the last
attempt), or when no answer came within --timeout.`,
		Example: `  kubectl rbe refresh nightly --wait`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := build()
			if err != nil {
				return err
			}
			return p.Refresh(cmd.Context(), args[0], wait, timeout)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "Wait for the operator's answer.")
	cmd.Flags().DurationVar(&timeout, "timeout", DefaultTimeout, "How long --wait waits.")
	return cmd
}

func urlCommand(build func() (*Plugin, error)) *cobra.Command {
	var minValidity, timeout time.Duration
	cmd := &cobra.Command{
		Use:   "url NAME",
		Short: "Print the download link, only if it stays valid for at least --min-validity (asking for a new one otherwise)",
		Long: `Prints the link from the operator's Secret if it stays valid for at least
--min-validity. Otherwise asks the operator for a new link, waits for it (at
most --timeout) and prints it. Fails at once, asking for nothing, when links
of this resource do not live that long (judged from the current link: its
expiry minus when the operator obtained it).

The link is a bearer credential: anyone who has it can download the backup
until it expires.`,
		Example: `  BACKUP_URL="$(kubectl rbe url nightly --min-validity 30m)"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := build()
			if err != nil {
				return err
			}
			return p.URL(cmd.Context(), args[0], minValidity, timeout)
		},
	}
	cmd.Flags().DurationVar(&minValidity, "min-validity", DefaultMinValidity, "How long the link must stay valid.")
	cmd.Flags().DurationVar(&timeout, "timeout", DefaultTimeout, "How long to wait for a new link.")
	return cmd
}

func downloadCommand(build func() (*Plugin, error)) *cobra.Command {
	var minValidity, timeout time.Duration
	var output, caFile string
	cmd := &cobra.Command{
		Use:   "download NAME",
		Short: "Download the backup through a link valid long enough, resuming an interrupted download",
		Long: `Downloads the backup through a link that stays valid for at least
--min-validity (see "kubectl rbe url"), over HTTPS only, into -o FILE (default:
the backup's ID with .rdb; "-" for stdout).

The file is written as FILE.partial and renamed once complete; the byte
count is checked against the length the storage announced. After an
interruption, the same command asks only for the rest, where the storage
honours Range requests (and starts over where it does not). A progress line
is shown on a terminal.`,
		Example: `  kubectl rbe download nightly -o nightly.rdb --min-validity 15m`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := build()
			if err != nil {
				return err
			}
			if caFile != "" {
				pool, err := CertPool(caFile)
				if err != nil {
					return err
				}
				p.HTTPClient = NewHTTPClient(pool)
			}
			return p.Download(cmd.Context(), args[0], output, minValidity, timeout)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", `File to write ("-": stdout); default: <backup ID>.rdb.`)
	cmd.Flags().DurationVar(&minValidity, "min-validity", DefaultMinValidity, "How long the link must stay valid when the download starts: the time the download takes, with a margin.")
	cmd.Flags().DurationVar(&timeout, "timeout", DefaultTimeout, "How long to wait for a new link.")
	cmd.Flags().StringVar(&caFile, "ca-file", "", "PEM file of additional certificate authorities to trust for the storage (the system's, and SSL_CERT_FILE, are always trusted).")
	return cmd
}

// Execute runs the command with ctx and returns the process's exit code,
// printing the error, if any, on ErrOut.
func Execute(ctx context.Context, cmd *cobra.Command, args []string) int {
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		cmd.PrintErrln("error:", err)
		return 1
	}
	return 0
}
