package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Check the audit log"}
	var data string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit log's hash chain; exit 1 at the first altered or missing entry",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := openExisting(ctx, data)
			if err != nil {
				return err
			}
			defer s.Close()
			brk, n, err := s.VerifyAudit(ctx)
			if err != nil {
				return err
			}
			if brk != nil {
				return fmt.Errorf("audit log broken at entry seq=%d id=%s: %s (%d entries checked)", brk.Seq, brk.ID, brk.Reason, n)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "audit log intact: %d entries verified\n", n)
			return nil
		},
	}
	dataFlag(verify, &data)
	cmd.AddCommand(verify)
	return cmd
}
