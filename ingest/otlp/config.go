package otlp

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/otlptranslator"
)

// Config is the otlp: section of the config file, named and defaulted as
// Prometheus 3's otlp: section.
type Config struct {
	// TranslationStrategy says how metric and label names are translated:
	// UnderscoreEscapingWithSuffixes (the default: invalid characters to
	// "_", unit and type suffixes), UnderscoreEscapingWithoutSuffixes,
	// NoUTF8EscapingWithSuffixes (names kept as they are, with suffixes)
	// or NoTranslation (names kept as they are).
	TranslationStrategy otlptranslator.TranslationStrategyOption `yaml:"translation_strategy"`
	// PromoteResourceAttributes are resource attributes copied as labels
	// onto every series of their resource.
	PromoteResourceAttributes []string `yaml:"promote_resource_attributes"`
	// PromoteAllResourceAttributes copies every resource attribute but
	// those in IgnoreResourceAttributes.
	PromoteAllResourceAttributes bool     `yaml:"promote_all_resource_attributes"`
	IgnoreResourceAttributes     []string `yaml:"ignore_resource_attributes"`
	// KeepIdentifyingResourceAttributes keeps service.name,
	// service.namespace and service.instance.id on target_info too.
	KeepIdentifyingResourceAttributes bool `yaml:"keep_identifying_resource_attributes"`
	// ConvertHistogramsToNHCB stores explicit-bucket histograms as native
	// histograms with custom buckets (schema -53) instead of classic
	// _bucket/_sum/_count series.
	ConvertHistogramsToNHCB bool `yaml:"convert_histograms_to_nhcb"`
	// PromoteScopeMetadata adds otel_scope_name, otel_scope_version,
	// otel_scope_schema_url and otel_scope_<attribute> labels.
	PromoteScopeMetadata bool `yaml:"promote_scope_metadata"`
	// LabelNameUnderscoreSanitization prefixes "key" to a label name
	// starting with a single "_" (default true, as Prometheus).
	LabelNameUnderscoreSanitization bool `yaml:"label_name_underscore_sanitization"`
	// LabelNamePreserveMultipleUnderscores keeps runs of "_" in translated
	// label names (default true, as Prometheus).
	LabelNamePreserveMultipleUnderscores bool `yaml:"label_name_preserve_multiple_underscores"`
}

// DefaultConfig returns Prometheus 3's defaults.
func DefaultConfig() Config {
	return Config{
		TranslationStrategy:                  otlptranslator.UnderscoreEscapingWithSuffixes,
		LabelNameUnderscoreSanitization:      true,
		LabelNamePreserveMultipleUnderscores: true,
	}
}

// UnmarshalYAML starts from DefaultConfig, so that an absent key keeps
// its default.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig()
	type plain Config
	return unmarshal((*plain)(c))
}

// Validate reports a config Prometheus would refuse: an unknown strategy,
// promote lists combined wrongly, empty or repeated attribute names.
func (c *Config) Validate() error {
	switch c.TranslationStrategy {
	case otlptranslator.UnderscoreEscapingWithSuffixes, otlptranslator.UnderscoreEscapingWithoutSuffixes,
		otlptranslator.NoUTF8EscapingWithSuffixes, otlptranslator.NoTranslation:
	case "":
		c.TranslationStrategy = otlptranslator.UnderscoreEscapingWithSuffixes
	default:
		return fmt.Errorf("otlp: unknown translation_strategy %q: want UnderscoreEscapingWithSuffixes, UnderscoreEscapingWithoutSuffixes, NoUTF8EscapingWithSuffixes or NoTranslation", c.TranslationStrategy)
	}
	if c.PromoteAllResourceAttributes {
		if len(c.PromoteResourceAttributes) > 0 {
			return errors.New("otlp: promote_all_resource_attributes and promote_resource_attributes cannot both be set")
		}
		if err := checkAttributes(c.IgnoreResourceAttributes); err != nil {
			return fmt.Errorf("otlp: ignore_resource_attributes: %w", err)
		}
		return nil
	}
	if len(c.IgnoreResourceAttributes) > 0 {
		return errors.New("otlp: ignore_resource_attributes needs promote_all_resource_attributes: true")
	}
	if err := checkAttributes(c.PromoteResourceAttributes); err != nil {
		return fmt.Errorf("otlp: promote_resource_attributes: %w", err)
	}
	return nil
}

// checkAttributes trims attrs in place and refuses empty or repeated ones.
func checkAttributes(attrs []string) error {
	seen := make(map[string]bool, len(attrs))
	var err error
	for i, a := range attrs {
		a = strings.TrimSpace(a)
		switch {
		case a == "":
			err = errors.Join(err, errors.New("an empty attribute name"))
		case seen[a]:
			err = errors.Join(err, fmt.Errorf("attribute %q twice", a))
		}
		seen[a] = true
		attrs[i] = a
	}
	return err
}
