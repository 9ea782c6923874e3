package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"docket/store"
)

func apikeyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "apikey", Short: "Manage API keys on a data directory"}
	var data, name, team, user string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API key (works while the server runs)",
		Example: "  docket apikey create --data ./docket-data --name me --json\n" +
			"  KEY=$(docket apikey create --name ci --json | jq -r .key)",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := openExisting(ctx, data)
			if err != nil {
				return err
			}
			defer s.Close()
			var t store.Team
			if team == "" {
				t, err = s.FirstTeam(ctx)
			} else {
				t, err = s.GetTeam(ctx, team)
			}
			if err != nil {
				return err
			}
			var u store.User
			if user == "" {
				u, err = s.TeamOwner(ctx, t.ID)
			} else {
				u, err = s.GetUserByEmail(ctx, user)
				if err != nil {
					u, err = s.GetUser(ctx, user)
				}
			}
			if err != nil {
				return err
			}
			a := store.Actor{TeamID: t.ID, UserID: u.ID, Channel: "cli", Operation: "createApiKey"}
			k, raw, err := s.CreateAPIKey(ctx, a, t.ID, u.ID, name)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]string{"id": k.ID, "key": raw, "team_id": t.ID, "user_id": u.ID})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "API key %q for %s in team %q (%s):\n\n  %s\n\nIt is shown only now. Use it as: Authorization: Bearer %s\n",
				name, u.Email, t.Name, t.ID, raw, raw)
			return nil
		},
	}
	dataFlag(create, &data)
	create.Flags().StringVar(&name, "name", "", "what the key is for, e.g. my-laptop (required)")
	create.Flags().StringVar(&team, "team", "", "team id (default: the first team, \"Default\")")
	create.Flags().StringVar(&user, "user", "", "email or id of the member the key acts as (default: the team's owner)")
	create.Flags().BoolVar(&asJSON, "json", false, `print {"id","key","team_id","user_id"}`)
	create.MarkFlagRequired("name")
	cmd.AddCommand(create)
	return cmd
}
