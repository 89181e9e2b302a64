package kafka

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/config"
	"github.com/dsctl/dsctl/probes/errs"
	kprobe "github.com/dsctl/dsctl/probes/kafka"
)

// PartitionOptions are the flags of `dsctl kafka partition`.
type PartitionOptions struct {
	Brokers       []string
	Keys          []string
	KeysFile      string
	Partitions    int
	PartitionsSet bool
	Topic         string
	TopicSet      bool
	// Show is how many keys, and disagreeing keys, of a keys file to list.
	Show int
}

func newPartitionCmd(f *cmdutil.Factory, brokers *[]string) *cobra.Command {
	o := &PartitionOptions{}
	cmd := &cobra.Command{
		Use:   "partition (--key K... | --keys-file F) (--partitions N | --topic T)",
		Short: "Map keys to partitions as the Java client, sarama and librdkafka do",
		Long: `Map each key to the partition its producer's default partitioner picks:

  java        Java client default: toPositive(murmur2(key)) % n
  sarama      sarama's default NewHashPartitioner: |int32(fnv1a32(key)) % n|
  librdkafka  librdkafka's default consistent_random: crc32(key) % n

Keys are hashed as their UTF-8 bytes (what StringSerializer sends). Keys on which the
three disagree are flagged: producers on different clients then write one key to
different partitions, which breaks per-key ordering for its consumers.

With --keys-file (one key per line, blank lines skipped, - for stdin) the output is
the number of keys per partition for each partitioner, the skew (max/mean keys per
partition; 1.0 is perfectly even) and the first --show disagreeing keys. --topic reads the
partition count from the cluster; --partitions gives it directly.

JSON keys: partitions, topic, keys_total, keys[{key, partitions{java, sarama,
librdkafka}, agree}], disagreeing, disagreeing_examples, distribution[{partition,
keys{java, sarama, librdkafka}}], skew{java, sarama, librdkafka}, partitioners,
from_file.`,
		Example: `  dsctl kafka partition --partitions 6 --key 21 --key foobar
  dsctl kafka partition --topic orders --key user-42 --sandbox
  seq 1 100000 | sed 's/^/user-/' | dsctl kafka partition --partitions 12 --keys-file -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Brokers = *brokers
			o.PartitionsSet = cmd.Flags().Changed("partitions")
			o.TopicSet = cmd.Flags().Changed("topic")
			p, err := f.Printer(output.Standard)
			if err != nil {
				return err
			}
			return RunPartition(cmd.Context(), f, p, o)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&o.Keys, "key", nil, "a key to map (repeatable)")
	fl.StringVar(&o.KeysFile, "keys-file", "", "file with one key per line (- for stdin)")
	fl.IntVar(&o.Partitions, "partitions", 0, "number of partitions")
	fl.StringVar(&o.Topic, "topic", "", "read the number of partitions of this topic from the cluster")
	fl.IntVar(&o.Show, "show", kprobe.DefaultShow, "with --keys-file, how many keys and disagreeing keys to list (0: none)")
	cmdutil.RegisterFlag(cmd, "topic", f.CompleteTopics(brokers))
	return cmd
}

// RunPartition maps the keys and prints the placement.
func RunPartition(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *PartitionOptions) error {
	if err := checkSandboxBrokers(f, o.Brokers); err != nil {
		return err
	}
	topicGiven := o.TopicSet || o.Topic != ""
	switch {
	case len(o.Keys) == 0 && o.KeysFile == "":
		return errs.Usage("give keys with --key K (repeatable) or --keys-file FILE")
	case len(o.Keys) > 0 && o.KeysFile != "":
		return errs.Usage("give --key or --keys-file, not both")
	case o.PartitionsSet && topicGiven:
		return errs.Usage("give --partitions or --topic, not both")
	case !o.PartitionsSet && !topicGiven:
		return errs.Usage("give the partition count with --partitions N, or --topic T to read it from the cluster")
	case o.PartitionsSet && o.Partitions < 1:
		return errs.Usage("--partitions must be at least 1, got %d", o.Partitions)
	case o.PartitionsSet && o.Partitions > 1<<31-1:
		return errs.Usage("--partitions is too large: %d", o.Partitions)
	case o.Show < 0:
		return errs.Usage("--show must be 0 or more, got %d", o.Show)
	}
	if topicGiven {
		if err := kprobe.ValidateTopicName(o.Topic); err != nil {
			return err
		}
	}
	n := int32(o.Partitions)
	if topicGiven {
		e, err := f.Endpoints(ctx, config.Overrides{Kafka: o.Brokers})
		if err != nil {
			return err
		}
		if n, err = kprobe.TopicPartitionCount(ctx, f.Dialer(), e.Kafka, o.Topic); err != nil {
			return err
		}
	}
	var pl *kprobe.Placement
	var err error
	if o.KeysFile != "" {
		var r io.Reader = f.IO.In
		if o.KeysFile != "-" {
			file, err := os.Open(o.KeysFile)
			if err != nil {
				return errs.Usage("cannot read keys file %s: %v", o.KeysFile, unwrapPathErr(err))
			}
			defer file.Close()
			r = file
		} else if f.IO.StdinTTY {
			f.IO.Infof("kafka partition: reading one key per line from stdin (ctrl-D to end)")
		}
		pl, err = kprobe.PlaceReader(r, n, o.Show)
	} else {
		pl, err = kprobe.Place(o.Keys, n)
	}
	if err != nil {
		return err
	}
	pl.Topic = o.Topic
	return p.Print(placementView{pl})
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

type placementView struct{ *kprobe.Placement }

func (v placementView) Table() *output.TableData {
	names := make([]string, len(kprobe.Partitioners))
	for i, pt := range kprobe.Partitioners {
		names[i] = pt.Name
	}
	var t *output.TableData
	if v.FromFile {
		t = &output.TableData{Header: append([]string{"partition"}, names...), RightAlign: map[int]bool{0: true, 1: true, 2: true, 3: true}}
		for _, d := range v.Distribution {
			row := []output.Cell{output.C(fmt.Sprint(d.Partition))}
			for _, n := range names {
				row = append(row, output.C(fmt.Sprint(d.Keys[n])))
			}
			t.AddCells(row...)
		}
		var skews []string
		for _, n := range names {
			skews = append(skews, fmt.Sprintf("%s %.3f", n, v.Skew[n]))
		}
		t.Notes = append(t.Notes, output.C(fmt.Sprintf("skew (max/mean keys per partition, 1.0 is even): %s", strings.Join(skews, ", "))))
		for _, ex := range v.DisagreeingExamples {
			t.Notes = append(t.Notes, output.S(fmt.Sprintf("  disagree: %q -> %s", ex.Key, placementText(ex, names)), output.Warn))
		}
		if shown := int64(len(v.DisagreeingExamples)); v.Disagreeing > shown {
			t.Notes = append(t.Notes, output.S(fmt.Sprintf("  ... and %d more disagreeing keys (--show N lists more)", v.Disagreeing-shown), output.Dim))
		}
	} else {
		t = &output.TableData{Header: append(append([]string{"key"}, names...), "agree"), RightAlign: map[int]bool{1: true, 2: true, 3: true}}
		for _, k := range v.Keys {
			row := []output.Cell{output.C(k.Key)}
			for _, n := range names {
				row = append(row, output.C(fmt.Sprint(k.Partitions[n])))
			}
			agree := output.S("yes", output.OK)
			if !k.Agree {
				agree = output.S("NO", output.Warn)
			}
			t.AddCells(append(row, agree)...)
		}
	}
	where := fmt.Sprintf("%d partitions", v.Partitions)
	if v.Topic != "" {
		where = fmt.Sprintf("topic %s (%d partitions)", v.Topic, v.Partitions)
	}
	summary := fmt.Sprintf("%s on %s: ", output.Plural(int(v.KeysTotal), "key"), where)
	if v.Disagreeing == 0 {
		t.Notes = append(t.Notes, output.S(summary+"all three partitioners agree", output.OK))
	} else {
		t.Notes = append(t.Notes, output.S(summary+fmt.Sprintf("%d disagree: producers on different clients send these keys to different partitions (per-key ordering breaks)", v.Disagreeing), output.Warn))
	}
	return t
}

func placementText(k kprobe.KeyPlacement, names []string) string {
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d", n, k.Partitions[n]))
	}
	return strings.Join(parts, ", ")
}
