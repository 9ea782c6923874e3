package cli

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"

	"docket/store"
)

// userCmd manages dashboard accounts on a data directory: adding a person with a role,
// and setting a password (the way back in when the first-start password is lost).
func userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage dashboard users on a data directory"}
	var data, team, email, name, role string
	add := &cobra.Command{
		Use:     "add",
		Short:   "Add a user to a team with a role and a password read from standard input",
		Example: "  printf '%s' \"$PASSWORD\" | docket user add --data ./docket-data --email ana@example.com --role member",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := store.ParseRole(role)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			hash, err := readPassword(cmd.InOrStdin())
			if err != nil {
				return err
			}
			s, err := openExisting(ctx, data)
			if err != nil {
				return err
			}
			defer s.Close()
			t, err := teamOrFirst(cmd, s, team)
			if err != nil {
				return err
			}
			u, err := s.CreateUser(ctx, store.Actor{TeamID: t.ID, Channel: "cli", Operation: "createUser"}, t.ID, email, name, hash, r)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added %s as %s of team %q (user %s). They can sign in to the dashboard now.\n", u.Email, r, t.Name, u.ID)
			return nil
		},
	}
	dataFlag(add, &data)
	add.Flags().StringVar(&team, "team", "", "team id (default: the first team)")
	add.Flags().StringVar(&email, "email", "", "the user's email, their sign-in name")
	add.Flags().StringVar(&name, "name", "", "display name")
	add.Flags().StringVar(&role, "role", "member", "owner, admin, member or viewer")
	add.MarkFlagRequired("email")

	password := &cobra.Command{
		Use:     "password",
		Short:   "Set a user's password from standard input; their open sessions end",
		Example: "  printf '%s' \"$PASSWORD\" | docket user password --data ./docket-data --email admin@localhost",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			hash, err := readPassword(cmd.InOrStdin())
			if err != nil {
				return err
			}
			s, err := openExisting(ctx, data)
			if err != nil {
				return err
			}
			defer s.Close()
			u, err := s.GetUserByEmail(ctx, email)
			if err != nil {
				return err
			}
			teams, err := s.UserTeams(ctx, u.ID)
			if err != nil || len(teams) == 0 {
				return fmt.Errorf("user %s belongs to no team: %v", email, err)
			}
			if err := s.SetUserPassword(ctx, store.Actor{TeamID: teams[0].Team.ID, Channel: "cli", Operation: "setUserPassword"}, u.ID, hash); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Password of %s changed; their dashboard sessions were ended.\n", u.Email)
			return nil
		},
	}
	dataFlag(password, &data)
	password.Flags().StringVar(&email, "email", "", "the user's email")
	password.MarkFlagRequired("email")
	cmd.AddCommand(add, password)
	return cmd
}

// readPassword reads a password (its first line) from r and returns its bcrypt hash.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if len(pw) < 8 {
		return "", fmt.Errorf("the password on standard input must have at least 8 characters, got %d", len(pw))
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash the password: %w", err)
	}
	return string(hash), nil
}

func teamOrFirst(cmd *cobra.Command, s *store.Store, team string) (store.Team, error) {
	if team == "" {
		return s.FirstTeam(cmd.Context())
	}
	return s.GetTeam(cmd.Context(), team)
}
