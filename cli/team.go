package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"docket/store"
)

func teamCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "team", Short: "Manage teams on a data directory"}
	var data, name, owner string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a team (its owner defaults to admin@localhost)",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := openExisting(ctx, data)
			if err != nil {
				return err
			}
			defer s.Close()
			u, err := s.GetUserByEmail(ctx, owner)
			if err != nil {
				return err
			}
			t, err := s.CreateTeam(ctx, store.Actor{UserID: u.ID, Channel: "cli", Operation: "createTeam"}, name, u.ID)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]string{"id": t.ID, "name": t.Name, "owner_id": u.ID})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created team %q (%s), owned by %s\n", t.Name, t.ID, u.Email)
			return nil
		},
	}
	dataFlag(create, &data)
	create.Flags().StringVar(&name, "name", "", "team name (required)")
	create.Flags().StringVar(&owner, "owner", store.AdminEmail, "email of the owner")
	create.Flags().BoolVar(&asJSON, "json", false, "print the team as JSON")
	create.MarkFlagRequired("name")
	cmd.AddCommand(create)
	return cmd
}
