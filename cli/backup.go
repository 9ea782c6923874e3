package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func backupCmd() *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the database to FILE (safe while the server runs)",
		Long: "Copies the live database with SQLite's VACUUM INTO: a consistent snapshot, even under load.\n" +
			"To restore: stop the server, copy FILE to <data>/docket.db (removing docket.db-wal and docket.db-shm), start it.\n" +
			"Keep master.key from the data directory with the backup: encrypted secrets need it.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dest := args[0]
			if _, err := os.Stat(dest); err == nil {
				return fmt.Errorf("%s already exists: choose a new file name (backup never overwrites)", dest)
			}
			ctx := cmd.Context()
			s, err := openExisting(ctx, data)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.Backup(ctx, dest); err != nil {
				return err
			}
			st, err := os.Stat(dest)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backup written: %s (%d bytes)\n", dest, st.Size())
			return nil
		},
	}
	dataFlag(cmd, &data)
	return cmd
}
