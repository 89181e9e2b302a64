package tui

import (
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
)

func TestGoldenKafka(t *testing.T) {
	views := []struct {
		name string
		keys []tea.Msg
		want string
	}{
		{"topics", nil, ""},
		{"partitions", []tea.Msg{keyType(tea.KeyDown), keyType(tea.KeyEnter)}, "orders.v1: 3 partitions"},
		{"findings", []tea.Msg{keyRunes("f")}, "why:"},
		{"whatif", []tea.Msg{keyRunes("w")}, "if this broker were lost"},
		{"groups", []tea.Msg{keyRunes("c")}, "audit-sink"},
		{"filter", []tea.Msg{keyRunes("/"), keyRunes("v1"), keyType(tea.KeyEnter)}, `filter "v1"`},
	}
	for _, v := range views {
		for _, sz := range sizes {
			t.Run(v.name+"/"+sz.name, func(t *testing.T) {
				fm := runSteps(t, New(fakeConfig(newFake(), PaneKafka)), sz.w, sz.h,
					step{want: "orders.v"}, step{keys: v.keys, want: v.want})
				checkGolden(t, fm.View())
			})
		}
	}
}

func TestKafkaFilterAndBack(t *testing.T) {
	m := New(fakeConfig(newFake(), PaneKafka))
	m.kafka.setData(fakeKafka(30), fixedNow)
	m.filter.set("v2")
	m.filterChanged()
	for _, i := range m.kafka.visible {
		if !strings.Contains(m.kafka.data.Topics[i].Name, "v2") {
			t.Fatalf("filter v2 shows %s", m.kafka.data.Topics[i].Name)
		}
	}
	if n := len(m.kafka.visible); n != 11 { // v2, v20..v29
		t.Fatalf("filter v2: %d topics, want 11", n)
	}
	m.kafka.action(ActEnter, m)
	if m.kafka.mode != kvPartitions || m.kafka.topic != "orders.v2" {
		t.Fatalf("enter: mode %d topic %q", m.kafka.mode, m.kafka.topic)
	}
	m.key(keyType(tea.KeyEsc))
	if m.kafka.mode != kvTopics || m.filter.String() != "v2" {
		t.Fatalf("esc from partitions: mode %d, filter %q (want topics, filter kept)", m.kafka.mode, m.filter.String())
	}
	m.key(keyType(tea.KeyEsc))
	if m.filter.String() != "" || len(m.kafka.visible) != 30 {
		t.Fatalf("second esc: filter %q, %d topics", m.filter.String(), len(m.kafka.visible))
	}
}
