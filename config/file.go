package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// file is the YAML file as written (API.md §10). Its field names are a contract.
type file struct {
	PublicURL string                  `yaml:"public_url"`
	Tenants   map[string]tenantFile   `yaml:"tenants"`
	Numbers   map[string]numberFile   `yaml:"numbers"`
	Greetings map[string]greetingFile `yaml:"greetings"`
}

type tenantFile struct {
	Plans   map[string]planFile `yaml:"plans"`
	Twilio  twilioFile          `yaml:"twilio"`
	Scoring scoringFile         `yaml:"scoring"`
	Vapi    vapiTenantFile      `yaml:"vapi"`
	Retell  retellTenantFile    `yaml:"retell"`
}

// retellTenantFile names the environment variable that holds the
// tenant's Retell API key, which signs Retell's webhooks.
type retellTenantFile struct {
	APIKeyEnv string `yaml:"api_key_env"`
}

// retellNumberFile is how a number a Retell agent answers is served.
type retellNumberFile struct {
	AgentID      string            `yaml:"agent_id"`
	Intent       string            `yaml:"intent"`
	IntentStatus string            `yaml:"intent_status"`
	Variables    map[string]string `yaml:"variables"`
}

// vapiTenantFile names the environment variable that holds the secret Vapi
// sends with each server message (its X-Vapi-Secret header).
type vapiTenantFile struct {
	SecretEnv string `yaml:"secret_env"`
}

// vapiNumberFile is how a number served by a Vapi assistant is answered:
// the assistant, and which keys of its structured output are the end's
// intent, intent status and variables.
type vapiNumberFile struct {
	AssistantID  string            `yaml:"assistant_id"`
	Intent       string            `yaml:"intent"`
	IntentStatus string            `yaml:"intent_status"`
	Variables    map[string]string `yaml:"variables"` // variable name → structured output key
}

type planFile struct {
	RateLimitPerMinute int `yaml:"rate_limit_per_minute"`
	MonthlyQuota       int `yaml:"monthly_quota"`
}

// twilioFile names the environment variables that hold the secrets: the file
// never holds a secret itself.
type twilioFile struct {
	AccountSID           string `yaml:"account_sid"`
	AuthTokenEnv         string `yaml:"auth_token_env"`
	PreviousAuthTokenEnv string `yaml:"previous_auth_token_env"`
	APIKeyEnv            string `yaml:"api_key_env"`
	APISecretEnv         string `yaml:"api_secret_env"`
}

type scoringFile struct {
	Weights    map[string]float64 `yaml:"weights"`
	Thresholds map[string]float64 `yaml:"thresholds"`
}

type numberFile struct {
	Tenant    string     `yaml:"tenant"`
	Greetings string     `yaml:"greetings"`
	Next      actionFile `yaml:"next"`
	Fallback  actionFile `yaml:"fallback"`
	// AgentHeaders maps a header name to the environment variable that
	// holds its value.
	AgentHeaders    map[string]string `yaml:"agent_headers"`
	TransferTargets []string          `yaml:"transfer_targets"`
	DialTimeout     *int              `yaml:"dial_timeout"` // seconds; nil: the default
	Unanswered      unansweredFile    `yaml:"unanswered"`
	Vapi            *vapiNumberFile   `yaml:"vapi"`
	Retell          *retellNumberFile `yaml:"retell"`
}

// unansweredFile is what runs when a dial is not answered: at most one field.
type unansweredFile struct {
	Message   string `yaml:"message"`
	Voicemail string `yaml:"voicemail"`
	Dial      string `yaml:"dial"`
}

type actionFile struct {
	Dial              string                 `yaml:"dial"`
	Stream            string                 `yaml:"stream"`
	ConversationRelay *conversationRelayFile `yaml:"conversation_relay"`
	Redirect          string                 `yaml:"redirect"`
	Whisper           *bool                  `yaml:"whisper"`
}

type conversationRelayFile struct {
	URL                          string `yaml:"url"`
	Language                     string `yaml:"language"`
	Voice                        string `yaml:"voice"`
	TTSProvider                  string `yaml:"tts_provider"`
	TranscriptionProvider        string `yaml:"transcription_provider"`
	SpeechModel                  string `yaml:"speech_model"`
	Interruptible                string `yaml:"interruptible"`
	WelcomeGreetingInterruptible string `yaml:"welcome_greeting_interruptible"`
	DTMFDetection                *bool  `yaml:"dtmf_detection"`
}

type greetingFile struct {
	Language             string   `yaml:"language"`
	Voice                string   `yaml:"voice"`
	DetailsMinConfidence *float64 `yaml:"details_min_confidence"` // nil: the default
	Reuse                string   `yaml:"reuse"`
	ReuseIntent          string   `yaml:"reuse_intent"`
	Confirm              string   `yaml:"confirm"`
	Ignore               string   `yaml:"ignore"`
	Fallback             string   `yaml:"fallback"`
	Welcome              string   `yaml:"welcome"`
	VoiceReuseIntent     string   `yaml:"voice_reuse_intent"`
	Connecting           string   `yaml:"connecting"`
	Declined             string   `yaml:"declined"`
	Yes                  []string `yaml:"yes"`
	No                   []string `yaml:"no"`
	MinSpeechConfidence  *float64 `yaml:"min_speech_confidence"` // nil: the default
}

// file reads and decodes the YAML file at path. An empty path means no file.
func (l *loader) file(path string) file {
	if path == "" {
		return file{}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		l.add("STICKYCALLS_CONFIG", "cannot read config file: %v", err) // err names the file
		return file{}
	}
	return l.decode(path, data)
}

// decode decodes data strictly: a field the file format does not define is a
// problem. An empty document is an empty file.
func (l *loader) decode(path string, data []byte) file {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(&f)
	var typeErr *yaml.TypeError
	switch {
	case errors.Is(err, io.EOF):
		return file{}
	case errors.As(err, &typeErr):
		// yaml.v3 still decodes the rest, so f is checked too and every
		// problem is listed at once.
		for _, e := range typeErr.Errors {
			l.addYAML(path, e)
		}
	case err != nil:
		l.addYAML(path, strings.TrimPrefix(err.Error(), "yaml: "))
		return file{}
	}
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		l.add(path, "must hold exactly one YAML document")
	}
	return f
}

// addYAML records a problem reported by the YAML library, as path:line when
// the library gives the line, and names unknown fields in the file's terms
// rather than in Go's.
func (l *loader) addYAML(path, msg string) {
	where := path
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if line, m, ok := strings.Cut(rest, ": "); ok {
			where, msg = path+":"+line, m
		}
	}
	var field, typ string
	if n, _ := fmt.Sscanf(msg, "field %s not found in type %s", &field, &typ); n == 2 {
		msg = fmt.Sprintf("unknown field %q in %s", field, section(typ))
	}
	l.add(where, "%s", msg)
}

// section names the part of the file that the Go type typ decodes.
func section(typ string) string {
	switch strings.TrimPrefix(typ, "config.") {
	case "tenantFile":
		return "a tenant (plans, twilio, scoring, vapi, retell)"
	case "retellTenantFile":
		return "a tenant's retell (api_key_env)"
	case "retellNumberFile":
		return "a number's retell (agent_id, intent, intent_status, variables)"
	case "vapiTenantFile":
		return "a tenant's vapi (secret_env)"
	case "vapiNumberFile":
		return "a number's vapi (assistant_id, intent, intent_status, variables)"
	case "planFile":
		return "a plan (rate_limit_per_minute, monthly_quota)"
	case "twilioFile":
		return "twilio (account_sid, auth_token_env, previous_auth_token_env, api_key_env, api_secret_env)"
	case "scoringFile":
		return "scoring (weights, thresholds)"
	case "numberFile":
		return "a number (tenant, greetings, next, fallback, agent_headers, transfer_targets, dial_timeout, unanswered, vapi, retell)"
	case "unansweredFile":
		return "unanswered (message, voicemail, dial)"
	case "actionFile":
		return "an action (dial, stream, conversation_relay, redirect, whisper)"
	case "conversationRelayFile":
		return "a conversation_relay (url, language, voice, tts_provider, transcription_provider, speech_model, " +
			"interruptible, welcome_greeting_interruptible, dtmf_detection)"
	case "greetingFile":
		return "a greeting set (language, voice, details_min_confidence, reuse, reuse_intent, confirm, ignore, fallback, " +
			"welcome, voice_reuse_intent, connecting, declined, yes, no, min_speech_confidence)"
	}
	return "the top level (public_url, tenants, numbers, greetings)"
}
