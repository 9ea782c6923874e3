"""The seed's human-in-the-loop flow against a docket box: start a Job, poll it, surface
its approval gate to an operator, relay the decision, and print the final answer.

    DOCKET_API_KEY=dk_... python triage_client.py <assignment-id> "I was charged twice for order #99182."

DOCKET_URL defaults to http://127.0.0.1:8420/v2. --approve / --deny answer the gate without
asking (for scripts).
"""

import os
import sys
import time

import requests

BASE_URL = os.environ.get("DOCKET_URL", "http://127.0.0.1:8420/v2").rstrip("/")
API_KEY = os.environ["DOCKET_API_KEY"]
HEADERS = {"Authorization": f"Bearer {API_KEY}"}


def api(method, path, **kwargs):
    resp = requests.request(method, f"{BASE_URL}{path}", headers=HEADERS, timeout=30, **kwargs)
    if resp.status_code >= 400:
        # docket's errors are {"error": code, "message": what to fix}.
        raise RuntimeError(f"{method} {path}: {resp.status_code} {resp.json().get('message')}")
    return resp.json()


def handle_complaint(assignment_id, email_body, decide):
    team_id = os.environ.get("DOCKET_TEAM_ID") or api("GET", "/teams")["teams"][0]["id"]

    # 1. Start the Job: the Assignment drafts a reply and asks for approval.
    run = api("POST", f"/teams/{team_id}/runs",
              json={"agent_id": assignment_id, "message": f"Inbound complaint: {email_body}"})["run"]
    run_id = run["id"]
    print(f"Job started: {run_id}")

    # 2. Poll until it completes or pauses at a gate.
    answered = set()
    while True:
        run = api("GET", f"/runs/{run_id}")["run"]
        status = run["status"]

        if status == "completed":
            messages = api("GET", f"/runs/{run_id}/messages", params={"order": "desc", "limit": 1})
            return messages["messages"][0]["text_content"]

        if status in ("failed", "stopped"):
            raise RuntimeError(f"Job ended with status {status}: {run.get('error')}")

        # 3. Surface the gate to an operator and relay the decision.
        req = run.get("pending_human_request")
        if status == "waiting" and req and req["id"] not in answered:
            print("\n--- Approval needed ---")
            print(f"Title:   {req['title']}")
            print(f"Details: {req['description']}")
            body = {"approved": decide(req)} if req["type"] == "approval" else {
                "answers": {q["question"]: input(q["question"] + " ") for q in req.get("questions", [])}}
            api("POST", f"/runs/{run_id}/human-requests/{req['id']}/respond", json=body)
            answered.add(req["id"])

        time.sleep(1)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.exit(__doc__)
    if "--approve" in sys.argv:
        decide = lambda req: True
    elif "--deny" in sys.argv:
        decide = lambda req: False
    else:
        decide = lambda req: input("Approve? (y/n): ").strip().lower() == "y"
    print(f"\nOutcome: {handle_complaint(args[0], args[1], decide)}")


if __name__ == "__main__":
    main()
